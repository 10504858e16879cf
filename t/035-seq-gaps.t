# A client that leaves while its sequence number is being taken leaves no
# hole: the number gets a tombstone, so readers paging by seq never wait.
# Redis is paused for writes (CLIENT PAUSE) to hold the number in flight,
# and MongoDB is slowed by a delaying proxy so the pause lands in time.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use DelayProxy;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes ();

our ($ProxyPid, $ProxyPort);

BEGIN {
    ($ProxyPid, $ProxyPort) = DelayProxy::start($ENV{TEST_NGINX_MONGO_PORT},
                                                0.15);
    $ENV{TEST_NGINX_MONGO_PORT} = $ProxyPort;
    ChatChats::init("598");
}

END { DelayProxy::stop($ProxyPid) if $ProxyPid }

*Id = \%ChatChats::Id;
our (%Id, $Got);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a send whose client left while it took its number is stored all the same (a write runs to the end)
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $main::Id{bob} })->{chat}{id};
my $one = ChatChats::api(alice => POST => "/api/messages",
               { chatId => $chat, tempId => "g1", type => "text", content => "one" });
# a reply: its check in MongoDB (slowed) comes before the number
my $body = JSON::PP::encode_json({ chatId => $chat, tempId => "g2",
                                   type => "text", content => "two",
                                   replyTo => $one->{message}{id} });
my $s = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}") or die;
print $s "POST /api/messages HTTP/1.1\r\nHost: x\r\n"
    . "Content-Type: application/json\r\n"
    . "Authorization: Bearer $ChatChats::Tok{alice}{accessToken}\r\n"
    . "Content-Length: " . length($body) . "\r\n\r\n$body";
Time::HiRes::sleep(0.1);
# hold the EVAL that takes the number, then let the client go; the
# pause ends well within chat_redis_command_timeout (3 s: Redis releases
# paused clients up to 100 ms late, and the worker's other writes, the
# chat list's for the first message, may be paused from its start)
my $rd = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}") or die;
print $rd "CLIENT PAUSE 2500 WRITE\r\n";
my $ok = <$rd>;
Time::HiRes::sleep(1.5);
close $s;
Time::HiRes::sleep(3);
ChatChats::api(alice => POST => "/api/messages",
               { chatId => $chat, tempId => "g3", type => "text", content => "three" });
my $list = ChatChats::api(bob => GET => "/api/chats/$chat/messages?after=0");
$main::Got = join ",", map { "$_->{seq}:$_->{type}" } @{ $list->{items} };
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- timeout: 30
--- response_body
1:text,2:text,3:text
--- no_error_log
[alert]
[emerg]



=== TEST 2: a sender checked before a block is not remembered after it
--- init
ChatChats::setup();
my $chat = ChatChats::api(carol => POST => "/api/chats/private",
                          { userId => $main::Id{bob} })->{chat}{id};
# bob's send: its check (in the slowed MongoDB) begins before carol
# blocks him and ends after it
my $body = JSON::PP::encode_json({ chatId => $chat, tempId => "bk-1",
                                   type => "text", content => "before" });
my $s = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}") or die;
print $s "POST /api/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Content-Type: application/json\r\n"
    . "Authorization: Bearer $ChatChats::Tok{bob}{accessToken}\r\n"
    . "Content-Length: " . length($body) . "\r\n\r\n$body";
Time::HiRes::sleep(0.05);
my ($blocked) = ChatChats::call(carol => POST =>
                                "/api/users/$main::Id{bob}/block");
# its answer: what it found was true before the block, and stays there
my $first = do { local $/; <$s> } // "";
my ($after) = ChatChats::call(bob => POST => "/api/messages",
    { chatId => $chat, tempId => "bk-2", type => "text", content => "after" });
$main::Got = "blocked:$blocked after:$after";
ChatChats::dyn($block, as => "carol", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- timeout: 30
--- response_body
blocked:200 after:403
