# A client written from the seed README's "Socket.IO Events" section
# alone (t/lib/seed-client.js, on the unmodified socket.io-client v4):
# authenticate, join_chat, typing, send_message with a tempId, delivered
# and read by messageId, add_reaction, edit_message with newContent,
# delete_message for everyone; every field the seed shows is there, and
# content is the seed's {type, text}.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatSIO;

our ($Got);

BEGIN {
    ChatChats::init("650");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
_EOC_
    if (defined $block->init) {
        $block->set_value("request", "GET /t");
        $block->set_value("response_body_filters", sub { "$main::Got\n" });
    }
});

sub main::seed {
    my (%extra) = @_;
    ChatChats::setup();
    my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                              { userId => $ChatChats::Id{bob} })->{chat}{id};
    my $got = ChatSIO::run("seed", script => "seed-client.js", chat => $chat,
                           run => time . "-$$-" . int(rand 1e6), %extra);
    # one item a line: a failure shows which
    $got =~ s/ (?=[a-z_]+=)/\n/g;
    return $got;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the seed's client over the websocket transport
--- init
$main::Got = main::seed(transports => ["websocket"]);
--- response_body
authenticated=1,1
deleted=true:deleted:false
delivered=true:delivered:true
edited=true:true:text,type:text:Edited text
message=true:true:true:text,type:text:Hello!
new_message=message,tempId
reaction=true:true:U+1f44d:U+1f44d*1:Hello!
read=true:read:true
sender_copy=Hello!
typing_start=true:true
typing_stop=true:false
user_alice=true
user_bob=true
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: the seed's client with socket.io-client's defaults (polling, then the upgrade)
--- init
$main::Got = main::seed();
--- response_body
authenticated=1,1
deleted=true:deleted:false
delivered=true:delivered:true
edited=true:true:text,type:text:Edited text
message=true:true:true:text,type:text:Hello!
new_message=message,tempId
reaction=true:true:U+1f44d:U+1f44d*1:Hello!
read=true:read:true
sender_copy=Hello!
typing_start=true:true
typing_stop=true:false
user_alice=true
user_bob=true
--- no_error_log
[error]
[alert]
[emerg]
