# lua-compat's API (resty.chat over LuaJIT's FFI), with Debian's
# lua-nginx-module loaded next to the module: an access token checked; a
# message sent as a user from content_by_lua, access_by_lua and a timer
# (the same operation as POST /api/messages: stored, numbered, on the
# other member's socket, refused where REST refuses); events published to
# a user and to a chat; the admin broadcast example; a user's presence
# (counted on the user's Redis shard: the suite runs with two,
# chat_redis_shards); and a hook directive refused by nginx -t when no Lua
# module is loaded.

BEGIN {
    use lib "t/lib";
    require ChatLua;
    ChatLua::load();
}

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatShards;
use ChatRT;
use JSON::PP;
use File::Temp qw(tempdir);
use Time::HiRes ();

our ($Got, $Chat, $Group, @Shards);

BEGIN {
    my ($shards, $conf) = ChatShards::start(2);
    @Shards = @$shards;
    ChatChats::init("690", ChatLua::package_path() . "\n    $conf");
}

*Id = \%ChatChats::Id;
our %Id;
*Tok = \%ChatChats::Tok;
our %Tok;

sub lua {
    my ($method, $path, $data) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => 'application/json',
                       'X-Admin-Secret' => 'sesame' },
          (defined $data ? (content => encode_json($data)) : ()) });
    my $body = $r->{content};
    chomp $body;
    return "$r->{status} $body";
}

sub chats {
    return if $Chat;
    ChatChats::setup("dave", "erin");
    $Chat = ChatChats::api(alice => POST => "/api/chats/private",
                           { userId => $Id{bob} })->{chat}{id};
    $Group = ChatChats::api(alice => POST => "/api/chats/group",
        { name => "lua", memberIds => [ $Id{bob}, $Id{carol} ] })
        ->{chat}{id};
}

sub name_of {
    my %name = reverse %Id;
    return $name{$_[0]} // $_[0];
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /placeholder { return 200; }

    location = /lua/token {
        content_by_lua_block {
            local chat = require "resty.chat"
            local r, err = chat.check_token(ngx.var.arg_t)
            if r then
                ngx.say("user ", r.user, " session ", r.session)
            else
                ngx.say("refused: ", err)
            end
        }
    }

    location = /lua/session_check {
        content_by_lua_block {
            local chat = require "resty.chat"
            local r, err = chat.check_session(ngx.var.arg_t)
            local r2 = chat.check_token(ngx.var.arg_t)
            ngx.say(r and ("live " .. r.user) or ("refused: " .. err),
                    "; check_token: ", r2 and "ok" or "refused")
        }
    }

    location = /lua/send {
        content_by_lua_block {
            local chat = require "resty.chat"
            local cjson = require "cjson"
            ngx.req.read_body()
            local status, a = chat.send(ngx.var.arg_user,
                                        cjson.decode(ngx.req.get_body_data()))
            ngx.say(status, " ", a.message
                                 and (a.message.content.text .. " seq "
                                      .. a.message.seq)
                                 or a.error.code)
        }
    }

    location = /lua/gate {
        access_by_lua_block {
            local chat = require "resty.chat"
            local status, a = chat.send(ngx.var.arg_user, {
                chatId = ngx.var.arg_chat, tempId = ngx.var.arg_temp,
                content = { type = "text", text = "from access" } })
            ngx.ctx.sent = "access " .. status .. " "
                           .. (a.message and a.message.content.text
                               or a.error.code)
        }
        content_by_lua_block {
            ngx.say(ngx.ctx.sent)
        }
    }

    location = /lua/timer {
        content_by_lua_block {
            local chat = require "resty.chat"
            local user, chat_id = ngx.var.arg_user, ngx.var.arg_chat
            local ok = ngx.timer.at(0, function()
                local status, a = chat.send(user, {
                    chatId = chat_id, tempId = "timer-1",
                    content = { type = "text", text = "from a timer" } })
                chat.publish_chat(chat_id, "timer_sent", { status = status })
            end)
            ngx.say(ok and "started" or "no timer")
        }
    }

    location = /lua/publish {
        content_by_lua_block {
            local chat = require "resty.chat"
            local f = ngx.var.arg_kind == "chat" and chat.publish_chat
                      or chat.publish_user
            local ok, err = f(ngx.var.arg_id, ngx.var.arg_event,
                              { said = ngx.var.arg_said })
            ngx.say(ok and "published" or ("refused: " .. err))
        }
    }

    location = /lua/session {
        content_by_lua_block {
            local chat = require "resty.chat"
            local t = chat.check_token(ngx.var.arg_t)
            local ok, err = chat.publish_session(t.user, ngx.var.arg_sid
                                                 or t.session, "to_device",
                                                 { said = "psst" })
            ngx.say(ok and "published" or ("refused: " .. err))
        }
    }

    location = /lua/presence {
        content_by_lua_block {
            local chat = require "resty.chat"
            local p, err = chat.presence(ngx.var.arg_user)
            if not p then
                ngx.say("refused: ", err)
                return
            end
            ngx.say(p.online and "online" or "offline", " workers ",
                    p.workers, " sockets ", p.sockets, " here ", p.here)
        }
    }

    location = /lua/members {
        content_by_lua_block {
            local chat = require "resty.chat"
            local roles, status = chat.members(ngx.var.arg_user,
                                               ngx.var.arg_chat)
            if not roles then
                ngx.say("status ", status)
                return
            end
            local out = {}
            for id, role in pairs(roles) do
                out[#out + 1] = id .. "=" .. role
            end
            table.sort(out)
            ngx.say(table.concat(out, " "), "; role of ", ngx.var.arg_who,
                    ": ", tostring(chat.role(ngx.var.arg_user,
                                             ngx.var.arg_chat,
                                             ngx.var.arg_who)))
        }
    }

    location = /lua/system {
        content_by_lua_block {
            local chat = require "resty.chat"
            local status, a = chat.send_system(ngx.var.arg_chat,
                ngx.var.arg_actor, { action = "notice",
                                     text = ngx.var.arg_text })
            ngx.say(status, " ", a.message and (a.message.type .. " "
                                 .. a.message.content.action)
                                 or a.error.code)
        }
    }

    location = /admin/broadcast {
        content_by_lua_block {
            require("admin_broadcast").handle("sesame")
        }
    }
_EOC_
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: check_token: a live token gives its user and session; a forged or broken one is refused with the gate's reason
--- init
main::chats();
my @r;
my $t = $main::Tok{alice}{accessToken};
my $got = main::lua(GET => "/lua/token?t=$t");
my ($user, $sid) = $got =~ /^200 user (\w{24}) session (\w{24})$/;
push @r, $user && $user eq $main::Id{alice} ? "alice" : "not alice: $got";
push @r, $sid ? "session" : "no session";
(my $forged = $t) =~ s/.$/$& eq "A" ? "B" : "A"/e;
push @r, main::lua(GET => "/lua/token?t=$forged") =~ /^200 refused: \S/
    ? "forged refused" : "forged accepted";
push @r, main::lua(GET => "/lua/token?t=abc");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice
session
forged refused
200 refused: malformed token



=== TEST 2: send as a user from content_by_lua: stored and numbered as POST /api/messages stores it, on the other member's socket; a retry is the same message; refused where REST refuses (not a member, a bad body)
--- init
main::chats();
my @r;
my $bob = ChatRT::connect("bob");
push @r, main::lua(POST => "/lua/send?user=$main::Id{alice}",
    { chatId => $main::Chat, tempId => "lua-1",
      content => { type => "text", text => "hello from lua" } });
my $e = ChatRT::wait_for($bob, "new_message", 5);
push @r, "bob got: " . ($e ? "$e->{data}{message}{content}{text} from "
    . main::name_of($e->{data}{message}{senderId}) . " tempId $e->{data}{tempId}"
    : "nothing");
push @r, main::lua(POST => "/lua/send?user=$main::Id{alice}",
    { chatId => $main::Chat, tempId => "lua-1",
      content => { type => "text", text => "hello from lua" } });
push @r, main::lua(POST => "/lua/send?user=$main::Id{carol}",
    { chatId => $main::Chat, tempId => "lua-2",
      content => { type => "text", text => "not mine" } });
push @r, main::lua(POST => "/lua/send?user=$main::Id{alice}",
    { chatId => $main::Chat, content => { type => "text", text => "x" } });
push @r, main::lua(POST => "/lua/send?user=nobody",
    { chatId => $main::Chat, tempId => "x", content => "x" });
my ($s1) = $r[0] =~ /seq (\d+)$/;
my ($s2) = $r[2] =~ /seq (\d+)$/;
push @r, $s1 && $s2 && $s1 == $s2 ? "same seq" : "seq $s1 then $s2";
s/ seq \d+$// for @r;
my $list = ChatChats::api(bob => GET => "/api/chats/$main::Chat/messages");
push @r, join ",", map { $_->{content}{text} } @{ $list->{items} };
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 201 hello from lua
bob got: hello from lua from alice tempId lua-1
200 200 hello from lua
200 404 not_found
200 400 invalid_request
200 400 invalid_request
same seq
hello from lua



=== TEST 3: send from access_by_lua and from an ngx.timer: both yield and are stored; the timer's sender publishes its status to the chat
--- init
main::chats();
my @r;
my $bob = ChatRT::connect("bob");
push @r, main::lua(GET => "/lua/gate?user=$main::Id{bob}&chat=$main::Group&temp=gate-1");
my $e = ChatRT::wait_for($bob, "new_message", 5);
push @r, "socket: " . ($e ? $e->{data}{message}{content}{text} : "nothing");
push @r, main::lua(GET => "/lua/timer?user=$main::Id{carol}&chat=$main::Group");
$e = ChatRT::wait_for($bob, "new_message", 5);
push @r, "socket: " . ($e ? $e->{data}{message}{content}{text} . " from "
    . main::name_of($e->{data}{message}{senderId}) : "nothing");
$e = ChatRT::wait_for($bob, "timer_sent", 5);
push @r, "timer_sent " . ($e ? $e->{data}{status} : "none");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 access 201 from access
socket: from access
200 started
socket: from a timer from carol
timer_sent 201



=== TEST 4: publish to a user reaches every socket of that user only; publish to a chat reaches its members; a bad id is refused
--- init
main::chats();
my @r;
my $b1 = ChatRT::connect("bob");
my $b2 = ChatRT::connect("bob");
my $c = ChatRT::connect("carol");
my $a = ChatRT::connect("alice");
push @r, main::lua(GET => "/lua/publish?kind=user&id=$main::Id{bob}&event=poke&said=hi");
for my $s ($b1, $b2) {
    my $e = ChatRT::wait_for($s, "poke", 5);
    push @r, "bob: " . ($e ? "poke $e->{data}{said}" : "nothing");
}
push @r, main::lua(GET => "/lua/publish?kind=chat&id=$main::Group&event=notice&said=all");
for my $s ($b1, $c, $a) {
    my $e = ChatRT::wait_for($s, "notice", 5);
    push @r, ($e ? "notice $e->{data}{said}" : "nothing");
}
push @r, "carol: " . (grep({ $_->{event} eq "poke" } ChatRT::drain($c, 0.5)) ? "poked" : "no poke");
push @r, main::lua(GET => "/lua/publish?kind=user&id=nope&event=poke");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 published
bob: poke hi
bob: poke hi
200 published
notice all
notice all
notice all
carol: no poke
200 refused: invalid id or data



=== TEST 5: the admin broadcast example: the secret is checked; the announcement reaches the users and chats named
--- init
main::chats();
my @r;
my $c = ChatRT::connect("carol");
my $b = ChatRT::connect("bob");
push @r, main::lua(POST => "/admin/broadcast",
    { userIds => [ $main::Id{carol} ], chatIds => [ $main::Chat ],
      text => "maintenance at noon" });
my $e = ChatRT::wait_for($c, "announcement", 5);
push @r, "carol: " . ($e ? $e->{data}{text} : "nothing");
$e = ChatRT::wait_for($b, "announcement", 5);
push @r, "bob: " . ($e ? $e->{data}{text} : "nothing");
my $r = HTTP::Tiny->new->post(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/admin/broadcast",
    { headers => { 'X-Admin-Secret' => 'wrong' }, content => '{"text":"x"}' });
push @r, "$r->{status} " . JSON::PP::decode_json($r->{content})->{error}{code};
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 {"published":2}
carol: maintenance at noon
bob: maintenance at noon
403 forbidden



=== TEST 6: without lua-nginx-module loaded, a hook directive fails nginx -t and says why; without hook directives the module starts as before
--- init
my $dir = File::Temp::tempdir(CLEANUP => 1);
mkdir "$dir/logs";
my ($chat) = grep { /ngx_http_chat_module/ } split " ", $ENV{TEST_NGINX_LOAD_MODULES};
my $conf = sub {
    my ($extra) = @_;
    open my $f, ">", "$dir/nginx.conf" or die;
    print $f "load_module $chat;\nerror_log $dir/logs/error.log;\n"
        . "pid $dir/logs/nginx.pid;\nevents {}\nhttp {\n"
        . ChatTest::chat_http_config() =~ s/\$(TEST_NGINX_\w+)/$ENV{$1}/gr
        . "$extra\n server { listen 127.0.0.1:1; location /api/ { chat_api; } }\n}\n";
    close $f;
    my $out = `$Test::Nginx::Util::NginxBinary -t -p $dir -c $dir/nginx.conf 2>&1`;
    return ($? == 0 ? "ok" : "failed") . ($out =~ /(\[emerg\].*)/ ? ": $1" : "");
};
my @r;
push @r, $conf->("");
push @r, $conf->("chat_lua_message_filter on;");
push @r, $conf->("chat_lua_events new_message;");
push @r, $conf->("chat_lua_signin_hook on;");
push @r, $conf->("chat_lua_socket_hook on;");
push @r, $conf->("chat_lua_message_filter off; chat_lua_signin_hook off;");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" =~ s/ in \S+:\d+//gr =~ s/\d+#\d+: //gr }
--- response_body
ok
failed: [emerg] "chat_lua_message_filter" needs lua-nginx-module: load ngx_http_lua_module (and ndk_http_module) with load_module before the http block
failed: [emerg] "chat_lua_events" needs lua-nginx-module: load ngx_http_lua_module (and ndk_http_module) with load_module before the http block
failed: [emerg] "chat_lua_signin_hook" needs lua-nginx-module: load ngx_http_lua_module (and ndk_http_module) with load_module before the http block
failed: [emerg] "chat_lua_socket_hook" needs lua-nginx-module: load ngx_http_lua_module (and ndk_http_module) with load_module before the http block
ok



=== TEST 7: presence: a user with two sockets here is online on one worker with two sockets; one without is offline; a bad id is refused
--- init
main::chats();
my @r;
my $b1 = ChatRT::connect("bob");
my $b2 = ChatRT::connect("bob");
Time::HiRes::sleep(0.3);
push @r, main::lua(GET => "/lua/presence?user=$main::Id{bob}");
push @r, main::lua(GET => "/lua/presence?user=$main::Id{carol}");
push @r, main::lua(GET => "/lua/presence?user=nobody");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 online workers 1 sockets 2 here 2
200 offline workers 0 sockets 0 here 0
200 refused: invalid user id



=== TEST 8: a chat's members and a user's role, as a member reads them; not a member: 404
--- init
main::chats();
my @r;
my $g = main::lua(GET => "/lua/members?user=$main::Id{bob}&chat=$main::Group&who=$main::Id{alice}");
my %name = reverse %main::Id;
$g =~ s/(\w{24})/$name{$1} \/\/ $1/ge;
push @r, $g;
push @r, main::lua(GET => "/lua/members?user=$main::Id{dave}&chat=$main::Group&who=$main::Id{alice}");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 alice=admin bob=member carol=member; role of alice: admin
200 status 404



=== TEST 9: a system message from Lua on behalf of a member: stored and numbered, on the members' sockets as a system notice; a non-member actor is refused; bad content refused
--- init
main::chats();
my @r;
my $b = ChatRT::connect("bob");
push @r, main::lua(GET => "/lua/system?chat=$main::Group&actor=$main::Id{alice}&text=maintenance");
my $e = ChatRT::wait_for($b, "new_message", 5);
push @r, "bob got: " . ($e ? "$e->{data}{message}{content}{type} $e->{data}{message}{content}{action} $e->{data}{message}{content}{text}" : "nothing");
push @r, main::lua(GET => "/lua/system?chat=$main::Group&actor=$main::Id{dave}&text=x");
push @r, main::lua(GET => "/lua/system?chat=nope&actor=$main::Id{alice}&text=x");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 201 system notice
bob got: system notice maintenance
200 404 not_found
200 400 invalid_request



=== TEST 10: publish to one session (a device's sockets): bob's socket of that session gets it, carol's socket and an event for another session of bob do not reach it
--- init
main::chats();
my @r;
my $b = ChatRT::connect("bob");
my $c = ChatRT::connect("carol");
my $tb = $ChatChats::Tok{bob}{accessToken};
my ($alice_sid) = main::lua(GET => "/lua/token?t=$ChatChats::Tok{alice}{accessToken}") =~ /session (\w{24})/;
push @r, main::lua(GET => "/lua/session?t=$tb&sid=$alice_sid");
push @r, main::lua(GET => "/lua/session?t=$tb");
my @got = grep { $_->{event} eq "to_device" } ChatRT::drain($b, 1);
push @r, "bob's socket: " . scalar(@got) . " " . join ",", map { $_->{data}{said} } @got;
push @r, "carol's socket: " . scalar(grep { $_->{event} eq "to_device" } ChatRT::drain($c, 0.3));
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 published
200 published
bob's socket: 1 psst
carol's socket: 0



=== TEST 11: check_session: a live session answers its user; after logout it is refused as revoked (check_token, which does not ask, still takes the token); a broken token refused at once
--- init
main::chats();
my @r;
my $t = $ChatChats::Tok{erin}{accessToken};
my $got = main::lua(GET => "/lua/session_check?t=$t");
$got =~ s/$main::Id{erin}/erin/;
push @r, $got;
my ($st) = ChatChats::call(erin => POST => "/api/auth/logout", {});
push @r, "logout $st";
push @r, main::lua(GET => "/lua/session_check?t=$t");
push @r, main::lua(GET => "/lua/session_check?t=abc");
$main::Got = join "\n", @r;
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 live erin; check_token: ok
logout 200
200 refused: revoked; check_token: ok
200 refused: malformed token; check_token: refused
