# lua-compat's hook on a socket's sign-in (chat_lua_socket_hook), with
# Debian's lua-nginx-module loaded next to the module: the hook sees each
# socket (user, session, its own id, codec, transport) once its token and
# session are checked, and lets it in, refuses it with a reason, or fails
# (an error, no answer in time); chat.publish_socket() reaches the one
# socket named by the id the hook was given, on either codec.

BEGIN {
    use lib "t/lib";
    require ChatLua;
    ChatLua::load();
}

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatWS;
use JSON::PP;
use MIME::Base64 ();
use Time::HiRes qw(time sleep);

our $Got;
my $JSON = JSON::PP->new->canonical;

BEGIN {
    ChatChats::init("776", ChatLua::package_path() . q{
    chat_lua_socket_hook on;
    chat_lua_hook_timeout 1s;
    lua_shared_dict socks 1m;

    init_worker_by_lua_block {
        local chat = require "resty.chat"
        local socks = ngx.shared.socks

        -- the rule a site would write: users on a list are refused
        chat.set_socket_hook(function(sock)
            local rule = socks:get("rule:" .. sock.userId)
            if rule == "slow" then
                ngx.sleep(1.5)
            elseif rule == "boom" then
                error("the socket hook blew up")
            elseif rule then
                return false, rule
            end
            socks:set("last:" .. sock.userId,
                      require("cjson").encode(sock))
            return true
        end)

        chat.start()
    }
});
}

*Id = \%ChatChats::Id;
our %Id;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
    location = /rule {
        content_by_lua_block {
            local socks = ngx.shared.socks
            local a = ngx.req.get_uri_args()
            if a.rule then
                socks:set("rule:" .. a.user, a.rule)
            else
                socks:delete("rule:" .. a.user)
            end
        }
    }
    location = /last {
        content_by_lua_block {
            ngx.print(ngx.shared.socks:get("last:" .. ngx.var.arg_user)
                      or "{}")
        }
    }
    location = /presence {
        content_by_lua_block {
            local p = require("resty.chat").presence(ngx.var.arg_user)
            ngx.print(p.online and "online" or "offline", " workers ",
                      p.workers, " sockets ", p.sockets)
        }
    }
    location = /publish {
        content_by_lua_block {
            local chat = require "resty.chat"
            local ok, err = chat.publish_socket(ngx.var.arg_sock, "note",
                                                { text = ngx.unescape_uri(
                                                    ngx.var.arg_text) })
            ngx.print(ok and "published" or "refused: " .. err)
        }
    }
_EOC_
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("request", "GET /last?user=none");
    $block->set_value("timeout", 30);
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

sub main::get {
    my ($path) = @_;
    my $r = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path");
    return $r->{content};
}

# what the hook saw of $who's latest socket
sub main::last_sock {
    my ($who) = @_;
    return $JSON->decode(main::get("/last?user=$Id{$who}"));
}

# the session id in $who's access token
sub main::token_sid {
    my ($who) = @_;
    my (undef, $p) = split /\./, $ChatChats::Tok{$who}{accessToken};
    $p =~ tr{-_}{+/};
    $p .= "=" x ((4 - length($p) % 4) % 4);
    return $JSON->decode(MIME::Base64::decode_base64($p))->{sid};
}

# a Socket.IO socket over the WebSocket transport, CONNECT sent with
# $who's token: the socket and the first Socket.IO event or packet
sub main::sio_open {
    my ($who) = @_;
    my ($s, $status) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    die "socket.io: $status" unless $status == 101;
    ChatWS::read_frame($s, 3);
    ChatWS::text($s, "40" . $JSON->encode(
        { token => $ChatChats::Tok{$who}{accessToken} }));
    return ($s, main::sio_next($s, 3));
}

# the next Socket.IO event as "name json", or a packet as "raw:..."
sub main::sio_next {
    my ($s, $timeout) = @_;
    for (;;) {
        my $f = ChatWS::read_frame($s, $timeout) or return "none";
        next if $f->{opcode} == 9 || $f->{opcode} == 10;
        my $p = $f->{payload};
        if ($p eq "2") { ChatWS::text($s, "3"); next; }
        next if $p =~ /^40/;
        if ($p =~ /^42(\[.*)$/s) {
            my $a = $JSON->decode($1);
            return "$a->[0] " . $JSON->encode($a->[1] // {});
        }
        return "raw:$p";
    }
}

sub main::worker_of { ChatRT::worker_of(@_) }

# presence as Lua reads it, once it reads $want (at most 3 s)
sub main::presence {
    my ($who, $want) = @_;
    my $got;
    for (1 .. 30) {
        $got = main::get("/presence?user=$Id{$who}");
        last if $got eq $want;
        sleep 0.1;
    }
    return $got;
}

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the plain WebSocket: the hook sees each socket (user, session, its own id, codec, transport); publish_socket reaches that socket alone
--- init
ChatChats::setup("dave");
my @r;
main::get("/rule?user=$main::Id{alice}");
my $s1 = ChatRT::connect("alice");
my $first = main::last_sock("alice");
my $s2 = ChatRT::connect("alice");
my $k = main::last_sock("alice");
push @r, "user " . ($k->{userId} eq $main::Id{alice} ? "alice" : $k->{userId}),
    "session " . ($k->{sessionId} eq main::token_sid("alice") ? "the token's" : $k->{sessionId}),
    "codec $k->{codec} transport $k->{transport}",
    "address $k->{address}",
    "ids " . ($k->{socketId} =~ /^[0-9a-f]{24}$/ && $first->{socketId} =~ /^[0-9a-f]{24}$/
              && $k->{socketId} ne $first->{socketId} ? "two" : "$first->{socketId} $k->{socketId}");
push @r, main::get("/publish?sock=$k->{socketId}&text=to+the+second");
my $e = ChatRT::wait_for($s2, "note", 3);
push @r, "second: " . ($e ? $e->{data}{text} : "nothing");
my @other = grep { $_->{event} eq "note" } ChatRT::drain($s1, 1);
push @r, "first: " . scalar(@other);
push @r, main::get("/publish?sock=nothex&text=x");
$main::Got = join "\n", @r;
--- response_body
user alice
session the token's
codec websocket transport websocket
address 127.0.0.1
ids two
published
second: to the second
first: 0
refused: invalid id or data



=== TEST 2: Socket.IO: the hook sees codec socketio; publish_socket reaches it
--- init
ChatChats::setup("dave");
my @r;
main::get("/rule?user=$main::Id{bob}");
my ($s, $first) = main::sio_open("bob");
push @r, "connect: " . ($first =~ /^authenticated / ? "authenticated" : $first);
my $k = main::last_sock("bob");
push @r, "codec $k->{codec} transport $k->{transport}";
push @r, main::get("/publish?sock=$k->{socketId}&text=sio");
push @r, "got: " . main::sio_next($s, 3);
$main::Got = join "\n", @r;
--- response_body
connect: authenticated
codec socketio transport websocket
published
got: note {"text":"sio"}



=== TEST 3: a refused socket gets authentication_error with the hook's reason (Socket.IO: CONNECT_ERROR) and is not signed in; it may try again once the rule is lifted
--- init
ChatChats::setup("dave");
my @r;
main::get("/rule?user=$main::Id{carol}&rule=carol+is+suspended");
my $s = ChatRT::connect("carol", no_wait => 1);
my $e = ChatRT::wait_for($s, "authentication_error", 3);
push @r, "plain: " . ($e ? $e->{data}{message} : "nothing");
ChatRT::send_event($s, "typing_start", { chatId => "0" x 24 }, "t1");
$e = ChatRT::wait_for($s, "error", 3, "t1");
push @r, "then: " . ($e ? ($e->{error}{code} // $e->{event}) : "nothing");
my ($x, $first) = main::sio_open("carol");
push @r, "socket.io: $first";
main::get("/rule?user=$main::Id{carol}");
ChatRT::send_event($s, "authenticate",
                   { token => $ChatChats::Tok{carol}{accessToken} }, "a2");
$e = ChatRT::wait_for($s, "authenticated", 3);
push @r, "lifted: " . ($e ? "authenticated" : "nothing");
$main::Got = join "\n", @r;
--- response_body
plain: carol is suspended
then: unauthenticated
socket.io: raw:44{"message":"carol is suspended"}
lifted: authenticated



=== TEST 4: a hook that errors or does not answer within chat_lua_hook_timeout refuses the socket, saying which
--- init
ChatChats::setup("dave");
my @r;
main::get("/rule?user=$main::Id{dave}&rule=boom");
my $s = ChatRT::connect("dave", no_wait => 1);
my $e = ChatRT::wait_for($s, "authentication_error", 3);
push @r, "error: " . ($e ? $e->{data}{message} : "nothing");
main::get("/rule?user=$main::Id{dave}&rule=slow");
my $t0 = time;
$s = ChatRT::connect("dave", no_wait => 1);
$e = ChatRT::wait_for($s, "authentication_error", 5);
push @r, "slow: " . ($e ? $e->{data}{message} : "nothing");
push @r, "within " . (time - $t0 < 2.5 ? "the timeout" : sprintf("%.1f s", time - $t0));
$main::Got = join "\n", @r;
--- response_body
error: the socket hook failed
slow: the socket hook did not answer in time
within the timeout
--- error_log
the socket hook blew up
the socket hook did not answer in time
--- no_error_log
[alert]
[emerg]



=== TEST 5: presence counts a user's sockets across workers: three sockets on two workers, one closed, then all
--- init
ChatChats::setup("dave");
my @r;
main::get("/rule?user=$main::Id{alice}");
# three sockets, two on one worker and one on the other
my @s;
for (1 .. 40) {
    my $x = ChatRT::connect("alice");
    push @s, [ $x, main::worker_of("alice") ];
    my %on;
    $on{ $_->[1] }++ for @s;
    last if @s == 3 && keys %on == 2;
    close((shift @s)->[0]) if @s == 3;
}
my %on;
$on{ $_->[1] }++ for @s;
push @r, "spread: " . join(",", sort { $a <=> $b } values %on);
push @r, main::presence(alice => "online workers 2 sockets 3");
# one of the two that share a worker
my ($pair) = grep { $on{$_} == 2 } keys %on;
my ($i) = grep { $s[$_][1] == $pair } 0 .. $#s;
close((splice @s, $i, 1)->[0]);
push @r, main::presence(alice => "online workers 2 sockets 2");
close $_->[0] for @s;
push @r, main::presence(alice => "offline workers 0 sockets 0");
$main::Got = join "\n", @r;
--- response_body
spread: 1,2
online workers 2 sockets 3
online workers 2 sockets 2
offline workers 0 sockets 0
