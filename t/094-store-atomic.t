# A document changed by two writers at once keeps both changes, as MongoDB
# keeps them: the module writes one user's document from the profile
# routes and from presence (online, lastSeenAt), a chat's from several
# routes, and counts on each update being whole.  FerretDB's SQLite
# backend read a document, changed it and wrote it back with nothing
# between, so one of two updates at once was lost (tools/bootstrap
# patches it: tools/ferretdb-atomic.patch).  TEST 1 is the store alone;
# TEST 2 is what a user saw: a profile change undone by their own
# sockets coming and going.  TEST 3: writers at once all get in, and the
# store's log stays bounded while it is copied into the database file in
# the background (tools/ferretdb-writes.patch turns SQLite's copies at
# commit off).

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatMongo;
use ChatRT;
use ChatWS;
use POSIX ();
use Time::HiRes qw(sleep time);

our $Got;

BEGIN {
    ChatChats::init("694");
}

*Id = \%ChatChats::Id;
*Tok = \%ChatChats::Tok;
our (%Id, %Tok);

our $db = "chat_atomic_$$";

sub mongo {
    return ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT}, db => $db);
}

# a signed-in plain WebSocket: its authenticated {user}
sub sign_in {
    my ($who) = @_;
    my ($s, $status) = ChatWS::open_ws("/ws?token=$Tok{$who}{accessToken}");
    die "websocket for $who: $status" unless $status == 101;
    my $e = ChatRT::wait_for($s, "authenticated", 10);
    die "$who not authenticated" unless $e;
    return ($s, $e->{data}{user});
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: two clients add 1 to their own field of one document 300 times each, at once: both fields hold 300
--- init
my $m = main::mongo();
$m->command(ChatMongo::doc(insert => "c", documents =>
    [ChatMongo::doc(_id => 1, a => 0, b => 0)]));
my @kids;
for my $f (qw(a b)) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $c = main::mongo();
        for (1 .. 300) {
            $c->command(ChatMongo::doc(update => "c", updates => [
                ChatMongo::doc(q => ChatMongo::doc(_id => 1),
                               u => ChatMongo::doc('$inc' =>
                                                   ChatMongo::doc($f => 1)))]));
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my @r;
for my $f (qw(a b)) {
    my $n = $m->command(ChatMongo::doc(count => "c",
                                       query => ChatMongo::doc($f => 300)));
    push @r, "$f:$n->{n}";
}
$m->command(ChatMongo::doc(dropDatabase => 1));
$main::Got = "@r";
--- response_body
a:1 b:1
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: 30 profile changes while the same user's sockets come and go without pause (each writes presence to the same document): each change is in the next sign-in and in GET /api/users/profile
--- init
ChatChats::setup("dave");
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    # a socket signed in, then closed: online, then offline with lastSeenAt
    my $end = time + 60;
    while (time < $end && getppid() > 1) {
        my ($s) = eval { main::sign_in("dave") };
        close $s if $s;
    }
    POSIX::_exit(0);
}
sleep 0.5;
my ($signed, $got) = (0, 0);
for my $i (1 .. 30) {
    ChatChats::api(dave => PUT => "/api/users/profile",
                   { name => "Dave $i", bio => "bio $i" });
    my (undef, $u) = main::sign_in("dave");
    $signed++ if $u->{name} eq "Dave $i" && $u->{bio} eq "bio $i";
    my $p = ChatChats::api(dave => GET => "/api/users/profile");
    $got++ if $p->{user}{name} eq "Dave $i"
              && $p->{user}{bio} eq "bio $i";
    sleep 0.05;
}
kill 'TERM', $pid;
waitpid $pid, 0;
$main::Got = "sign-in:$signed profile:$got";
--- response_body
sign-in:30 profile:30
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: 8 clients insert 250 documents of 2 KB each at once: all 2,000 stored, and SQLite's log stays under 16 MB (copied in the background; at 8 MB the rest is copied with the writers held: without that copy it held every write, 32 MB here)
--- init
my $m = main::mongo();
$m->command(ChatMongo::doc(insert => "w", documents =>
    [ChatMongo::doc(_id => "first", k => -1)]));
my @kids;
for my $k (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $c = main::mongo();
        for my $i (1 .. 250) {
            $c->command(ChatMongo::doc(insert => "w", documents => [
                ChatMongo::doc(_id => "$k-$i", k => $k, pad => "x" x 2000)]));
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my $n = $m->command(ChatMongo::doc(count => "w",
                                   query => ChatMongo::doc(k => ChatMongo::doc(
                                       '$gt' => 0))));
my $wal = -s "$ENV{TEST_CHAT_STORE_DIR}/$main::db.sqlite-wal";
my $mb = defined $wal ? $wal / 1048576 : -1;
warn sprintf "t/094: the log after 2,000 inserts: %.1f MB\n", $mb;
$m->command(ChatMongo::doc(dropDatabase => 1));
$main::Got = "stored:$n->{n} log:"
             . ($mb >= 0 && $mb < 16 ? "small" : sprintf("%.1f MB", $mb));
--- response_body
stored:2000 log:small
--- no_error_log
[error]
[alert]
[emerg]
