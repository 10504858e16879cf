# Commands to Redis go out at the end of the event loop's pass that asked
# for them, in one write, without arming the socket's write event; a
# write that cannot finish (more than the socket takes) waits for the
# socket instead.  Here Redis (one of the test's own) is stopped while a
# Lua handler publishes 600 events of 64 KB to carol (not connected:
# Redis drops them) and then one to bob, about 39 MB of commands in one
# pass, more than the kernel holds for a stopped reader: once Redis goes
# on, bob's socket has his event.  Meanwhile the worker answers what
# needs no Redis: one that posted its write again from inside the write
# would spin there until Redis read again.  Lua needs Debian's NGINX (t/lib/ChatLua.pm): the file
# skips itself under --asan.

BEGIN {
    use lib "t/lib";
    require ChatLua;
    ChatLua::load();
}

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatRT;
use HTTP::Tiny;
use Time::HiRes ();

our ($Redis, $Got);

BEGIN {
    $Redis = ChatRedis->new->start;
    # chat_http_config() names $TEST_NGINX_REDIS_PORT, read when a block runs
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    # all of it may wait for a reply: 39 MB of commands
    ChatChats::init("788", ChatLua::package_path()
                           . "\n    chat_redis_command_timeout 20s;"
                           . "\n    chat_redis_output_buffer 64m;");
}

END {
    if ($Redis && $Redis->{pid}) {
        kill 'CONT', $Redis->{pid};
        $Redis->stop;
    }
}

*Id = \%ChatChats::Id;
our %Id;

sub get {
    my ($path, $timeout) = @_;
    my $r = HTTP::Tiny->new(timeout => $timeout // 10)->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path");
    my $body = $r->{content};
    chomp $body;
    return "$r->{status} $body";
}

ChatTest::got_blocks(<<'_EOC_', 60);
    location /api/ { chat_api; }
    location /ws { chat_ws; }

    location = /lua/flood {
        content_by_lua_block {
            local chat = require "resty.chat"
            local big = string.rep("x", 65536)
            for i = 1, tonumber(ngx.var.arg_n) do
                local ok, err = chat.publish_user(ngx.var.arg_id, "flood",
                                                  { i = i, said = big })
                if not ok then
                    ngx.say("refused: ", err)
                    return
                end
            end
            local ok, err = chat.publish_user(ngx.var.arg_last, "last",
                                              { after = ngx.var.arg_n })
            ngx.say(ok and "published" or ("refused: " .. err))
        }
    }
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Redis stopped, 39 MB of publishes in one pass, then one to bob: the worker answers what needs no Redis meanwhile; once Redis goes on, bob has his event
--- init
ChatChats::setup();
my @r;
my $b = ChatRT::connect("bob");
kill 'STOP', $main::Redis->{pid};
push @r, main::get("/lua/flood?n=600&id=$main::Id{carol}&last=$main::Id{bob}");
# what is not Redis's is answered meanwhile: the worker waits on the socket
push @r, "meanwhile: " . main::get("/t", 2);
Time::HiRes::sleep(0.5);
kill 'CONT', $main::Redis->{pid};
my $e = ChatRT::wait_for($b, "last", 15);
push @r, "bob: " . ($e ? "last after $e->{data}{after}" : "nothing");
push @r, main::get("/lua/flood?n=1&id=$main::Id{carol}&last=$main::Id{bob}");
$e = ChatRT::wait_for($b, "last", 5);
push @r, "again: " . ($e ? "last after $e->{data}{after}" : "nothing");
$main::Got = join "\n", @r;
--- response_body
200 published
meanwhile: 200 t
bob: last after 600
200 published
again: last after 1
--- no_error_log
[error]
[alert]
[emerg]
