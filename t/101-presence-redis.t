# Online is Redis's: a socket's sign-in writes nothing to the user's
# document (the stats' mark of activity, activeAt, comes from the walk
# of chat_active_walk, 10 min by default: t/102), and every view of
# a user (GET /api/users/:id, contacts, search, add-contact, the
# subscribe_presence ack) reads online and last seen from Redis as it is
# answered; the document keeps lastSeenAt, written at each going offline.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatMongo;
use Time::HiRes ();

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("786", "chat_user_view_limit 100000 1m;");
}

ChatTest::got_blocks(<<'_EOC_', 60);
    location /api/ { chat_api; }
    location /ws { chat_ws; }
_EOC_

# dave's document: how many match these conditions (0 or 1)
sub main::dave_doc {
    my %cond = @_;
    my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $mongo->command(ChatMongo::doc(count => "users",
        query => ChatMongo::doc(_id => ChatMongo::oid($ChatChats::Id{dave}), %cond)));
    return $r->{n};
}

sub main::before { ChatMongo::doc('$lt' => ChatMongo::date(int($_[0] * 1000))) }
sub main::after  { ChatMongo::doc('$gte' => ChatMongo::date(int($_[0] * 1000))) }

# dave as carol sees him, once online is $want (5 s at most)
sub main::dave {
    my ($want) = @_;
    my $u;
    for (1 .. 50) {
        $u = ChatChats::api(carol => GET => "/api/users/$ChatChats::Id{dave}")->{user};
        last if ($u->{online} ? 1 : 0) == $want;
        Time::HiRes::sleep(0.1);
    }
    return ($u->{online} ? "on" : "off") . ","
           . (($u->{lastSeen} // "") =~ /^\d{4}-\d\d-\d\dT/ ? "seen" : "?");
}

# the commands that write that FerretDB ran since $before
sub main::mongo_writes {
    my ($before) = @_;
    my $now = ChatMongo::command_counts($ENV{TEST_NGINX_MONGO_PORT});
    my $n = 0;
    for my $c (qw(insert update delete findAndModify)) {
        $n += ($now->{$c} // 0) - ($before->{$c} // 0);
    }
    return $n;
}

# the presence batch's wait (100 ms) and its task, with room to spare:
# for what must not be written
sub main::settle { Time::HiRes::sleep(0.6) }

# dave_doc() once it is 1 (5 s at most): for what a batch writes
sub main::dave_doc_soon {
    my $n;
    for (1 .. 50) {
        $n = main::dave_doc(@_);
        last if $n;
        Time::HiRes::sleep(0.1);
    }
    return $n;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a first sign-in writes nothing to MongoDB (FerretDB's own count of its writes): no online, no activeAt; the close writes lastSeenAt; a sign-in within the hour writes nothing either
--- init
ChatChats::setup("dave");
my @r;
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "everyone", lastSeen => "everyone" } });
my $t0 = Time::HiRes::time();
push @r, "before:" . main::dave(0);

my $counts = ChatMongo::command_counts($ENV{TEST_NGINX_MONGO_PORT});
my $s = ChatRT::connect("dave");
push @r, "in:" . main::dave(1);
main::settle();
push @r, "writes:" . main::mongo_writes($counts);
push @r, "marked:" . main::dave_doc(activeAt => ChatMongo::doc('$exists' => JSON::PP::true()));
push @r, "doc_online:" . main::dave_doc(online => JSON::PP::true());

# the close: offline at once, last seen from Redis before the document
close $s;
push @r, "out:" . main::dave(0);
push @r, "doc_seen:" . main::dave_doc_soon(online => JSON::PP::false(),
                                           lastSeenAt => main::after($t0 - 1));

# again: nothing of the document changes
Time::HiRes::sleep(1.1);
my $t2 = Time::HiRes::time();
$counts = ChatMongo::command_counts($ENV{TEST_NGINX_MONGO_PORT});
$s = ChatRT::connect("dave");
push @r, "again:" . main::dave(1);
main::settle();
push @r, "writes:" . main::mongo_writes($counts);
push @r, "unchanged:" . main::dave_doc(lastSeenAt => main::before($t2),
                                       online => JSON::PP::false());
close $s;
main::dave(0);
main::settle();
$main::Got = "@r";
--- response_body
before:off,? in:on,? writes:0 marked:0 doc_online:0 out:off,seen doc_seen:1 again:on,seen writes:0 unchanged:1
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: the lists read Redis too: contacts, search, add-contact and the subscribe_presence ack show dave online while his socket is open, offline with last seen once it closes
--- init
ChatChats::setup("dave");
my @r;
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "everyone", lastSeen => "everyone" } });
my $add = ChatChats::api(carol => POST => "/api/users/add-contact",
                         { userId => $ChatChats::Id{dave} });
push @r, "added:" . ($add->{contact}{online} ? "on" : "off");
my $s = ChatRT::connect("dave");
main::dave(1);
my $state = sub {
    my $list = ChatChats::api(carol => GET => "/api/users/contacts");
    my ($c) = grep { $_->{id} eq $ChatChats::Id{dave} } @{ $list->{items} };
    my $found = ChatChats::api(carol => GET => "/api/users/search?q="
                               . ($ChatChats::Phone{dave} =~ s/\+/%2B/r));
    my ($f) = grep { $_->{id} eq $ChatChats::Id{dave} } @{ $found->{items} };
    my $a = ChatChats::api(carol => POST => "/api/users/add-contact",
                           { userId => $ChatChats::Id{dave} });
    my $w = ChatRT::connect("carol");
    ChatRT::send_event($w, "subscribe_presence", { userId => $ChatChats::Id{dave} }, 1);
    my $ack = ChatRT::wait_for($w, "ack", 3, 1);
    close $w;
    return join ",", map { !$_ ? "none" : $_->{online} ? "on"
                                 : $_->{lastSeen} ? "off+seen" : "off" }
                     $c, $f, $a->{contact}, $ack->{data}{user};
};
push @r, "open:" . $state->();
close $s;
main::dave(0);
push @r, "closed:" . $state->();
$main::Got = "@r";
--- response_body
added:off open:on,on,on,on closed:off+seen,off+seen,off+seen,off+seen
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: what dave hides stays hidden: with online and lastSeen "nobody", no view of his shows either, while his socket is open or after it closes (Redis knows both)
--- init
ChatChats::setup("dave");
my @r;
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "nobody", lastSeen => "nobody" } });
my $shown = sub {
    my $u = ChatChats::api(carol => GET => "/api/users/$ChatChats::Id{dave}")
            ->{user};
    my $list = ChatChats::api(carol => GET => "/api/users/contacts");
    my ($c) = grep { $_->{id} eq $ChatChats::Id{dave} } @{ $list->{items} };
    return join ",", map { (exists $_->{online} ? "online" : "")
                           . (exists $_->{lastSeen} ? "seen" : "") || "none" }
                     $u, $c;
};
ChatChats::api(carol => POST => "/api/users/add-contact",
               { userId => $ChatChats::Id{dave} });
my $s = ChatRT::connect("dave");
Time::HiRes::sleep(0.3);
push @r, "open:" . $shown->();
close $s;
main::settle();
push @r, "closed:" . $shown->();
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "everyone", lastSeen => "everyone" } });
push @r, "shown_again:" . $shown->();
$main::Got = "@r";
--- response_body
open:none,none closed:none,none shown_again:onlineseen,onlineseen
--- no_error_log
[error]
[alert]
[emerg]
