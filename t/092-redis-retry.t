# Changes that must reach Redis once stored (a cached profile dropped, a
# member's chat ids changed) and whose command was lost on the way are
# sent again when the connection comes back: each kind, in one worker
# that has used both.  The worker reaches Redis through a proxy that cuts
# the connection at the first command holding a marker the test names.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatRT;
use ChatWS;
use DelayProxy;
use Time::HiRes qw(sleep);

our ($Got, $Redis, $Proxy, $Cut);

BEGIN {
    $Redis = ChatRedis->new->start;
    $Cut = "/tmp/chat-092-$$.cut";
    unlink $Cut;
    my $port;
    ($Proxy, $port) = DelayProxy::start($Redis->port, 0, cut_file => $Cut);
    $ENV{TEST_NGINX_REDIS_PORT} = $port;
    ChatChats::init("692");
}

END {
    DelayProxy::stop($Proxy) if $Proxy;
    unlink $Cut if $Cut;
}

# the authenticated {user} of a new plain WebSocket of $who
sub signed_in_as {
    my ($who) = @_;
    my ($s, $status) = ChatWS::open_ws(
        "/ws?token=$ChatChats::Tok{$who}{accessToken}");
    die "websocket for $who: $status" unless $status == 101;
    my $e = ChatRT::wait_for($s, "authenticated", 5);
    close $s;
    return $e ? $e->{data}{user} : {};
}

# the next command holding $marker is cut on its way to Redis
sub cut_next {
    my ($marker) = @_;
    open my $f, ">", $Cut or die "$Cut: $!";
    print $f "$marker\n";
    close $f;
}

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a profile change and a removal whose Redis commands are cut on the way are seen by the next sign-ins once the connection is back
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup("dave");
my @r;
my %Id = %ChatChats::Id;
# the worker uses both kinds of change first
ChatChats::api(dave => PUT => "/api/users/profile", { name => "Dave 1" });
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "cut", memberIds => [ $Id{carol}, $Id{bob} ] })->{chat}{id};
ChatChats::api(alice => DELETE => "/api/chats/$g/members/$Id{bob}");
# dave's profile and carol's chat ids are in Redis now
push @r, "before:" . main::signed_in_as("dave")->{name};
ChatRT::drain(ChatRT::connect("carol"), 0.2);
# the drop of dave's cached profile never reaches Redis
main::cut_next("upg:{" . lc $Id{dave});
ChatChats::api(dave => PUT => "/api/users/profile", { name => "Dave 2" });
my $name = "";
for (1 .. 30) {
    $name = main::signed_in_as("dave")->{name} // "";
    last if $name eq "Dave 2";
    sleep 0.2;
}
push @r, "after:$name";
# carol's removal from the group never reaches Redis either
unlink glob("/tmp/delayproxy-$$-*.lost");
main::cut_next("ucm:{" . lc($Id{carol}) . "}:" . lc $g);
ChatChats::api(alice => DELETE => "/api/chats/$g/members/$Id{carol}");
sleep 1;
my $s = ChatRT::connect("carol");
ChatChats::api(alice => POST => "/api/messages",
    { chatId => $g, tempId => "cut-$$", type => "text",
      content => "carol is out" });
my @got = grep { $_->{event} eq "new_message" } ChatRT::drain($s, 1);
push @r, "removed_gets:" . scalar @got;
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
before:Dave 1 after:Dave 2 removed_gets:0
--- timeout: 30
--- error_log
chat redis: lost connection
--- no_error_log
[alert]
[emerg]
