# Redis goes away and comes back while Socket.IO polling sessions and
# WebSockets have events in flight: a polling session's sends fail while
# Redis is away, and its socket goes from a posted event, never under the
# code that was sending.  Nothing crashes (the suite also runs this under
# AddressSanitizer), and the server serves again once Redis is back.

use Test::Nginx::Socket;
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatRT;
use HTTP::Tiny;
use Time::HiRes qw(sleep);

our ($Got, $Redis);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    ChatChats::init("638");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_ping_interval 300ms;
        chat_ws_pong_timeout 200ms;
    }
    location /socket.io/ {
        chat_socketio;
        chat_ws_ping_interval 300ms;
        chat_ws_pong_timeout 200ms;
    }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 60);
});

# one block: a reload between blocks (TEST_NGINX_USE_HUP) would add nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Redis restarted under polling sessions and sockets in flight
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
           . "/socket.io/?EIO=4&transport=polling";
my $http = HTTP::Tiny->new(timeout => 5);
my @sids;
for my $who (qw(alice bob alice bob)) {
    my ($sid) = $http->get($base)->{content} =~ /^0\{"sid":"([^"]+)"/;
    die "no sid" unless $sid;
    $http->post("$base&sid=$sid", { content => '40{"token":"'
        . $ChatChats::Tok{$who}{accessToken} . '"}' });
    push @sids, $sid;
}
my @ws = map { ChatRT::connect($_) } qw(alice bob alice);
# events in flight: sends from one socket, answers owed to all
for my $i (1 .. 20) {
    ChatRT::send_event($ws[0], "send_message",
                       { chatId => $chat, tempId => "rr-$i", type => "text",
                         content => "in flight $i" }, $i);
}
$http->post("$base&sid=$_", { content => '42["typing_start",{"chatId":"'
                                          . $chat . '"}]' }) for @sids;
# events whose acks are owed over polling when Redis goes
my $n = 0;
for my $sid (@sids) {
    $http->post("$base&sid=$sid", { content => join "\x1e", map {
        $n++;
        '42' . $n . '["send_message",{"chatId":"' . $chat
        . '","tempId":"rp-' . $n . '","type":"text","content":"x"}]'
    } 1 .. 5 });
}
$main::Redis->stop;
# while it is away: polls, posts, heartbeats and sends all fail somewhere
for my $round (1 .. 4) {
    $http->post("$base&sid=$_", { content => "3" }) for @sids;
    ChatRT::send_event($ws[2], "send_message",
                       { chatId => $chat, tempId => "rd-$round",
                         type => "text", content => "away $round" },
                       100 + $round);
    sleep 0.3;
}
$main::Redis->start;
sleep 1.5;
$http->get("$base&sid=$_") for @sids;
ChatRT::drain($_, 0.3) for @ws;
close $_ for @ws;
# the workers are alive and serve; a fresh Engine.IO session opens
my $t = $http->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/t");
my $open = $http->get($base);
$main::Got = "$t->{status} " . ($open->{content} =~ /^0\{"sid"/ ? "open" : "?");
--- response_body
200 open
--- no_error_log
[alert]
[emerg]
