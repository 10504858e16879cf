# lua-compat's hooks, with Debian's lua-nginx-module loaded next to the
# module: the site's message filter (the profanity example, and a filter
# that errors or is slow) accepting, rejecting and rewriting a message
# before it is stored, on REST, the plain WebSocket and Socket.IO; its
# timeout answers the send while the worker serves others; the webhook
# example POSTing new messages after their commit; the sign-in rule
# example refusing a number.

BEGIN {
    use lib "t/lib";
    require ChatLua;
    ChatLua::load();
}

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatSIO;
use FakeHTTP;
use JSON::PP;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);

our ($Got, $Chat, $Hook, $n);

BEGIN {
    $Hook = FakeHTTP->new;
    $Hook->set_reply(204, '');
    $ENV{TEST_NGINX_HOOK_PORT} = $Hook->port;

    ChatChats::init("700", ChatLua::package_path() . q{
    chat_lua_message_filter on;
    chat_lua_signin_hook on;
    chat_lua_hook_timeout 1s;
    chat_lua_events new_message;

    init_worker_by_lua_block {
        local chat = require "resty.chat"
        local profanity = require "profanity_filter"

        chat.set_message_filter(function(msg)
            local text = type(msg.content) == "table" and msg.content.text
                         or ""
            if text:find("slowly", 1, true) then
                ngx.sleep(3)
            elseif text:find("boom", 1, true) then
                error("the filter blew up")
            end
            return profanity.filter(msg)
        end)

        local rule = require("signin_rule").hook({
            prefixes = { "+1628" }, banned_devices = { "banned" } })
        chat.set_signin_hook(function(req)
            if req.device == "slow" then
                ngx.sleep(3)
            end
            return rule(req)
        end)

        require("webhook").start(
            "http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hook")

        chat.start()
    }
});
}

*Id = \%ChatChats::Id;
our %Id;

sub chats {
    return if $Chat;
    ChatChats::setup();
    $Chat = ChatChats::api(alice => POST => "/api/chats/private",
                           { userId => $Id{bob} })->{chat}{id};
}

# POST /api/messages as alice: "status text-or-code"
sub send_rest {
    my ($text) = @_;
    $n++;
    my ($status, $b) = ChatChats::call(alice => POST => "/api/messages",
        { chatId => $Chat, tempId => "rest-$$-$n",
          content => { type => "text", text => $text } });
    return "$status " . ($b->{message} ? $b->{message}{content}{text}
                         : "$b->{error}{code}: $b->{error}{message}");
}

sub texts {
    my $list = ChatChats::api(bob => GET => "/api/chats/$Chat/messages");
    return join ",", map { $_->{content}{text} } reverse @{ $list->{items} };
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/auth/ {
        access_by_lua_block {
            require("signin_rule").check({ "+1628" })
        }
        chat_api;
    }
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
    location = /placeholder { return 200; }
_EOC_
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: REST: the filter accepts a clean message, rewrites a word on its list (stored and delivered rewritten), rejects a blocked link with its reason (422, nothing stored)
--- init
main::chats();
my @r;
my $bob = ChatRT::connect("bob");
push @r, main::send_rest("hello there");
push @r, main::send_rest("what the heck is this");
my @got = grep { $_->{event} eq "new_message" } ChatRT::drain($bob, 1);
push @r, "bob got: " . join ",", map { $_->{data}{message}{content}{text} } @got;
push @r, main::send_rest("see http://evil.example/x");
push @r, "stored: " . main::texts();
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
201 hello there
201 what the **** is this
bob got: hello there,what the **** is this
422 message_rejected: links to evil.example are not allowed
stored: hello there,what the **** is this



=== TEST 2: the plain WebSocket: send_message is accepted, rewritten, or answered with the rejection's error, or the failed filter's
--- init
main::chats();
my @r;
my $a = ChatRT::connect("alice");
my $i = 0;
for my $text ("ws hello", "darn it", "go to http://evil.example", "boom") {
    $i++;
    ChatRT::send_event($a, "send_message",
        { chatId => $main::Chat, tempId => "ws-$$-$i",
          content => { type => "text", text => $text } }, $i);
    my $e = ChatRT::wait_for($a, "ack", 5, $i);
    push @r, !$e ? "nothing"
        : $e->{event} eq "error" ? "error $e->{error}{code}: $e->{error}{message}"
        : "$e->{event} $e->{data}{message}{content}{text}";
}
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
ack ws hello
ack **** it
error message_rejected: links to evil.example are not allowed
error filter_failed: the message filter failed
--- error_log
the filter blew up
--- no_error_log
[alert]
[emerg]



=== TEST 3: Socket.IO: the same four outcomes in the acks
--- init
main::chats();
$main::Got = ChatSIO::run("x", script => "sio-lua.js", chat => $main::Chat,
    texts => [ "sio hello", "heck no", "http://evil.example", "boom" ]);
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
1=ok:sio hello 2=ok:**** no 3=message_rejected:422:links to evil.example are not allowed 4=filter_failed:503:the message filter failed
--- error_log
the filter blew up
--- no_error_log
[alert]
[emerg]



=== TEST 4: a filter that errors: the send answers 503 filter_failed, nothing is stored, the error is logged
--- init
main::chats();
my @r;
my $before = main::texts();
push @r, main::send_rest("boom");
push @r, main::texts() eq $before ? "nothing stored" : "stored";
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
503 filter_failed: the message filter failed
nothing stored
--- error_log
the message filter failed: "
the filter blew up
--- no_error_log
[alert]
[emerg]



=== TEST 5: a slow filter: the send answers 503 after chat_lua_hook_timeout, and the worker answers another request meanwhile
--- init
main::chats();
my @r;
my $body = JSON::PP::encode_json({ chatId => $main::Chat, tempId => "slow-$$",
    content => { type => "text", text => "slowly now" } });
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
    PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or die "connect: $!";
my $t0 = Time::HiRes::time();
print $s "POST /api/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Authorization: Bearer $ChatChats::Tok{alice}{accessToken}\r\n"
    . "Content-Type: application/json\r\n"
    . "Content-Length: " . length($body) . "\r\n\r\n$body";
Time::HiRes::sleep(0.1);
my ($st) = ChatChats::call(bob => GET => "/api/chats/$main::Chat");
# the send has no answer yet: the worker served bob while the filter ran
my $pending = !IO::Select->new($s)->can_read(0);
push @r, "another request: $st" . ($pending ? " while the filter runs"
                                            : " after the send's answer");
local $/;
my $answer = <$s>;
my $t2 = Time::HiRes::time();
my ($code) = $answer =~ m{^HTTP/1.1 (\d+)};
my ($json) = $answer =~ /\r\n\r\n(.*)$/s;
push @r, "send: $code " . JSON::PP::decode_json($json)->{error}{code} . ": "
    . JSON::PP::decode_json($json)->{error}{message};
# the filter sleeps 3 s: an answer before that is the timeout's
push @r, $t2 - $t0 >= 0.9 && $t2 - $t0 < 2.9 ? "after the timeout" : "after " . ($t2 - $t0);
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
another request: 200 while the filter runs
send: 503 filter_failed: the message filter did not answer in time
after the timeout
--- error_log
did not answer in time



=== TEST 6: the webhook example: each new message is POSTed after its commit, a rejected one is not
--- init
main::chats();
$main::Hook->clear;
my @r;
push @r, main::send_rest("for the hook");
push @r, main::send_rest("http://evil.example again");
my @hooks;
for (1 .. 30) {
    @hooks = $main::Hook->requests;
    last if @hooks;
    Time::HiRes::sleep(0.1);
}
Time::HiRes::sleep(0.3);
@hooks = $main::Hook->requests;
for my $h (@hooks) {
    my $b = JSON::PP::decode_json($h->{body});
    push @r, "$h->{method} $h->{path} $b->{event} "
        . ($b->{chatId} eq $main::Chat ? "chat" : "other chat")
        . " $b->{content}{text} " . ($b->{senderId} eq $main::Id{alice} ? "alice" : "?");
}
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
201 for the hook
422 message_rejected: links to evil.example are not allowed
POST /hook new_message chat for the hook alice



=== TEST 7: the sign-in rule example: a number outside the allowed prefixes is refused before a code is sent; one inside goes on
--- init
main::chats();
my @r;
my $http = HTTP::Tiny->new;
my $fresh = sprintf("+1628700%04d", ($$ % 10000 + 7) % 10000);
for my $phone ("+442071838750", $fresh) {
    my $res = $http->post("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/send-otp",
        { headers => { 'Content-Type' => 'application/json' },
          content => JSON::PP::encode_json({ phone => $phone }) });
    my $b = eval { JSON::PP::decode_json($res->{content}) } || {};
    push @r, "$res->{status} " . ($b->{error} ? $b->{error}{code} : "sent");
}
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
403 sign_in_refused
200 sent



=== TEST 8: the sign-in hook (the sign-in rule example's hook): a right code on a banned device is refused with the rule's reason (403, no tokens); another device signs in; a hook slower than chat_lua_hook_timeout (1s) answers 503
--- init
main::chats();
my @r;
my $http = HTTP::Tiny->new(timeout => 10);
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth";
my %h = (headers => { 'Content-Type' => 'application/json' });
my $i = 0;
for my $device ("banned", "phone", "slow") {
    $i++;
    my $phone = sprintf("+1628700%04d", ($$ % 10000 + 7 + $i) % 10000);
    my $res = $http->post("$base/send-otp", { %h,
        content => JSON::PP::encode_json({ phone => $phone }) });
    my $t0 = Time::HiRes::time();
    $res = $http->post("$base/verify-otp", { %h,
        content => JSON::PP::encode_json({ phone => $phone,
            code => ChatAuth::code_for($ChatChats::Twilio, $phone),
            device => $device }) });
    my $b = eval { JSON::PP::decode_json($res->{content}) } || {};
    push @r, "$device: $res->{status} " . ($b->{error}
        ? "$b->{error}{code}: $b->{error}{message}"
        : ($b->{accessToken} ? "tokens" : "no tokens"));
}
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
banned: 403 sign_in_refused: this device may not sign in
phone: 200 tokens
slow: 503 signin_hook_failed: the sign-in hook did not answer in time
--- error_log
the sign-in hook did not answer in time
--- no_error_log
[alert]
[emerg]
