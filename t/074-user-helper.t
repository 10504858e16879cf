# The Test::Nginx helper for users (t/lib/Test/Nginx/Chat.pm), used as an
# operator would use it in a test of their own configuration: and only it.
# Two users sign in through the real OTP flow (the fake Twilio, then the
# log provider), open a chat, and each receives the other's message on
# its socket: a WebSocket, and a Socket.IO connection.

use Test::Nginx::Socket 'no_plan';
use Test::Nginx::Chat;

chat_fake_twilio();

chat_blocks(
    http_config => chat_backends_config() . chat_twilio_config(),
    config => <<'_EOC_');
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
_EOC_

our $Chat;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: two users sign in with the codes the fake Twilio got
--- chat
my $alice = chat_sign_in(alice => chat_phone(1));
my $bob = chat_sign_in(bob => chat_phone(2));
join " ", map { $_->{id} =~ /^[0-9a-f]{24}$/ && $_->{accessToken} ? "ok" : "no" }
          $alice, $bob;
--- response_body
ok ok



=== TEST 2: alice writes over REST; bob's WebSocket gets it
--- chat
my ($status, $body) = chat_api(alice => POST => "/api/chats/private",
                               { userId => chat_user("bob")->{id} });
$main::Chat = $body->{chat}{id};
my $ws = chat_ws("bob");
($status) = chat_api(alice => POST => "/api/messages",
                     { chatId => $main::Chat, tempId => "h-$$",
                       type => "text", content => "hello bob" });
my $e = $ws->expect("new_message", 5);
$ws->close;
"$status " . ($e ? $e->{data}{message}{content}{text} : "nothing");
--- response_body
201 hello bob



=== TEST 3: bob answers over Socket.IO with an ack; alice's socket gets it
--- chat
my $alice = chat_sio("alice");
my $bob = chat_sio("bob");
$bob->emit(send_message => { chatId => $main::Chat, tempId => "r-$$",
                             content => { type => "text", text => "hi alice" } },
           1);
my $ack = $bob->answer(1, 5);
my $e = $alice->expect("new_message", 5);
$_->close for $alice, $bob;
join " ", ($ack ? $ack->{event} : "no-ack"),
          ($e ? $e->{data}{message}{content}{text} : "nothing");
--- response_body
ack hi alice



=== TEST 4: a sign-in with the log provider: the code read from the error log
--- http_config eval
Test::Nginx::Chat::chat_backends_config() . "    chat_sms_provider log;\n"
    . "    chat_otp_ip_limit 1000000;\n"
--- chat
my $carol = chat_sign_in(carol => chat_phone(3), via => "log");
my ($status, $body) = chat_api(carol => GET => "/api/users/profile");
"$status " . ($body->{user}{phone} eq chat_phone(3) ? "mine" : "not mine");
--- response_body
200 mine
