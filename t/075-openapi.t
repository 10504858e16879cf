# OpenAPI: openapi.yaml against the module itself.  TEST 1: every route of
# the route table (ngx_chat_module/api/ngx_http_chat_api.c) is documented
# with its method, public routes without security and the others behind the
# bearer scheme, and nothing is documented that the table does not serve.
# TEST 2: every route called for real, a success and at least one error
# (every route with a token called once without one: 401), and the
# operator's locations the file documents (health, readiness, metrics,
# media downloads), each answer's
# status documented for its operation and its body validated against the
# documented schema with a JSON Schema validator (t/lib/openapi_check.py,
# Debian's python3-jsonschema and python3-yaml); the bodies of the
# successful requests validated against their documented request bodies.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatPng;
use ChatChats;
use ChatAuth;
use JSON::PP;
use HTTP::Tiny;
use IPC::Open2;
use Compress::Zlib ();
use File::Temp qw(tempdir);

our ($Got, @Ex, $Dir);

BEGIN {
    $Dir = tempdir(CLEANUP => 1);
    chmod 0777, $Dir;
    $ENV{TEST_NGINX_MEDIA_ROOT} = $Dir;
    ChatChats::init("675", q{chat_media_url_secret "media-secret-0123456789abcdef0123";
    chat_media_root $TEST_NGINX_MEDIA_ROOT;
    chat_turn_uris turn:127.0.0.1:3478?transport=udp;
    chat_stun_uris stun:127.0.0.1:3478;
    chat_turn_secret turn-secret-0123456789abcdef;});
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", q{
    location /api/ { chat_api; client_max_body_size 10m; }
    location = /healthz { chat_healthz; }
    location = /readyz { chat_readyz; }
    location = /metrics { chat_metrics; }
    location /media/ { chat_media; }
    location = /t { return 200 "t"; }
});
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { $main::Got });
    $block->set_value("timeout", 60);
});

# the checker's findings: "ok\n" when it has none
sub main::check {
    my ($mode, $input) = @_;
    my $pid = open2(my $out, my $in, "/usr/bin/python3",
                    "$ENV{TEST_NGINX_ROOT}/t/lib/openapi_check.py", $mode,
                    "$ENV{TEST_NGINX_ROOT}/openapi.yaml",
                    "$ENV{TEST_NGINX_ROOT}/ngx_chat_module/api/"
                    . "ngx_http_chat_api.c");
    if ($ENV{OPENAPI_DUMP} && defined $input) {
        open my $d, ">", $ENV{OPENAPI_DUMP} or die;
        print $d $input;
    }
    print $in $input // "";
    close $in;
    my $res = do { local $/; <$out> };
    waitpid $pid, 0;
    return $res . ($? ? "exit " . ($? >> 8) . "\n" : "");
}

# one exchange, recorded for the checker: $who undef sends no token;
# $raw = [content type, bytes] sends a raw body
sub main::ex {
    my ($who, $method, $path, $data, $raw) = @_;
    my %h;
    $h{Authorization} = "Bearer $ChatChats::Tok{$who}{accessToken}"
        if defined $who;
    my %o = (headers => \%h);
    if ($raw) {
        $h{'Content-Type'} = $raw->[0];
        $o{content} = $raw->[1];
    } elsif (defined $data) {
        $h{'Content-Type'} = 'application/json';
        $o{content} = encode_json($data);
    }
    my $r = HTTP::Tiny->new->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path", \%o);
    my $body = eval { decode_json($r->{content}) };
    push @main::Ex, { method => $method, path => $path,
                      status => $r->{status} + 0,
                      contentType => $r->{headers}{'content-type'} // "",
                      (defined $body ? (body => $body)
                                     : (text => $r->{content})),
                      ($raw ? () : (defined $data ? (request => $data) : ())) };
    return ($r->{status}, $body);
}

# a PNG of w x h, unique by its seed
sub main::png {
    return ChatPng::png(@_);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the route table and openapi.yaml: every route documented, nothing more, security as the table says
--- init
$main::Got = main::check("routes");
--- response_body
ok
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: every route called: each status documented, each answer valid against its schema
--- init
ChatChats::setup("dave");
my %I = %ChatChats::Id;
my $tw = $ChatChats::Twilio;
my $bad = "0123456789abcdef01234567";

# sign-in, as a new user would: erin
$ChatChats::Phone{erin} = $ChatChats::Phone{dave};
$ChatChats::Phone{erin} =~ s/(\d)$/($1 + 5) % 10/e;
my $phone = $ChatChats::Phone{erin};
main::ex(undef, POST => "/api/auth/send-otp", { phone => "12" });
main::ex(undef, POST => "/api/auth/send-otp", { phone => $phone });
main::ex(undef, POST => "/api/auth/verify-otp",
         { phone => $phone, code => "000000" });
my (undef, $v) = main::ex(undef, POST => "/api/auth/verify-otp",
    { phone => $phone, code => ChatAuth::code_for($tw, $phone),
      device => "openapi" });
$ChatChats::Tok{erin} = $v;
$I{erin} = $v->{user}{id};
main::ex(erin => POST => "/api/auth/complete-profile", { name => "" });
main::ex(erin => POST => "/api/auth/complete-profile",
         { name => "Erin", bio => "hello" });
main::ex(undef, POST => "/api/auth/refresh-token", { refreshToken => "x.y" });
(undef, $v) = main::ex(undef, POST => "/api/auth/refresh-token",
                       { refreshToken => $v->{refreshToken} });
$ChatChats::Tok{erin}{accessToken} = $v->{accessToken};
my (undef, $s) = main::ex(erin => GET => "/api/auth/sessions");
main::ex(erin => DELETE => "/api/auth/sessions/$bad");

# devices
main::ex(alice => PUT => "/api/devices", { platform => "android" });
main::ex(alice => PUT => "/api/devices",
         { platform => "android", token => "tok-openapi-$$",
           bundleId => "com.example.chat" });
main::ex(alice => DELETE => "/api/devices");

# users
main::ex(alice => GET => "/api/users/profile");
main::ex(alice => PUT => "/api/users/profile", { name => 5 });
main::ex(alice => PUT => "/api/users/profile",
         { name => "Alice", bio => "hi", privacy => { lastSeen => "contacts" } });
main::ex(alice => POST => "/api/users/upload-avatar", undef,
         [ "application/pdf", "%PDF-1.4\n%%EOF\n" ]);
main::ex(alice => POST => "/api/users/upload-avatar", undef,
         [ "image/png", main::png(2, 2, $$) ]);
main::ex(alice => GET => "/api/users/search");
main::ex(alice => GET => "/api/users/search?q=bo");
main::ex(alice => POST => "/api/users/add-contact", { userId => $bad });
main::ex(alice => POST => "/api/users/add-contact", { userId => $I{bob} });
main::ex(alice => GET => "/api/users/contacts");
main::ex(alice => POST => "/api/users/contacts/sync", { phones => "x" });
main::ex(alice => POST => "/api/users/contacts/sync",
         { phones => [ $ChatChats::Phone{bob}, "+16285550000" ] });
main::ex(alice => POST => "/api/users/add-contact", { userId => $I{carol} });
main::ex(alice => DELETE => "/api/users/contacts/$I{carol}");
main::ex(alice => DELETE => "/api/users/contacts/nope");
main::ex(carol => POST => "/api/users/$bad/block");
main::ex(carol => POST => "/api/users/$I{erin}/block");
main::ex(carol => GET => "/api/users/blocked");
main::ex(carol => DELETE => "/api/users/nope/block");
main::ex(carol => DELETE => "/api/users/$I{erin}/block");
main::ex(alice => GET => "/api/users/$I{bob}");
main::ex(bob => GET => "/api/users/$I{alice}");
main::ex(alice => GET => "/api/users/$bad");

# media
main::ex(alice => POST => "/api/media", undef,
         [ "image/png", "%PDF-1.4\n%%EOF\n" ]);
my (undef, $m) = main::ex(alice => POST => "/api/media", undef,
                          [ "image/png", main::png(3, 2, $$ + 1) ]);
main::ex(undef, GET => $m->{media}{url});
(my $forged = $m->{media}{url}) =~ s/sig=[0-9a-f]/sig=g/;
main::ex(undef, GET => $forged);

# the operator's locations
main::ex(undef, GET => "/healthz");
main::ex(undef, GET => "/readyz");
main::ex(undef, GET => "/metrics");

# chats
main::ex(alice => POST => "/api/chats/private", { userId => $I{alice} });
my (undef, $c) = main::ex(alice => POST => "/api/chats/private",
                          { userId => $I{bob} });
my $priv = $c->{chat}{id};
main::ex(alice => POST => "/api/chats/group", { memberIds => [] });
(undef, $c) = main::ex(alice => POST => "/api/chats/group",
    { name => "Team", memberIds => [ $I{bob}, $I{carol} ],
      description => "d" });
my $grp = $c->{chat}{id};
main::ex(alice => GET => "/api/chats?limit=abc");
main::ex(alice => GET => "/api/chats");
main::ex(alice => GET => "/api/chats/ids");

# messages
main::ex(alice => POST => "/api/messages",
         { chatId => $priv, tempId => "bad id!", type => "text",
           content => "x" });
my (undef, $msg) = main::ex(alice => POST => "/api/messages",
    { chatId => $priv, tempId => "oa-$$-1", type => "text",
      content => "hello there" });
my $mid = $msg->{message}{id};
main::ex(bob => POST => "/api/messages",
    { chatId => $priv, tempId => "oa-$$-2",
      content => { type => "text", text => "hello back" } });
main::ex(alice => POST => "/api/messages",
    { chatId => $grp, tempId => "oa-$$-3", type => "location",
      content => { latitude => 1.5, longitude => 2.5, name => "here" } });
main::ex(alice => POST => "/api/messages",
    { chatId => $grp, tempId => "oa-$$-4", type => "image",
      content => { mediaId => $m->{media}{id}, caption => "pic" } });
main::ex(dave => GET => "/api/chats/$priv/messages");
main::ex(alice => GET => "/api/chats/$priv/messages");
main::ex(alice => GET => "/api/chats/$grp/messages?limit=1");
main::ex(alice => GET => "/api/chats/$priv/messages/search");
main::ex(alice => GET => "/api/chats/$priv/messages/search?q=hel");
main::ex(bob => POST => "/api/chats/$priv/read", { upToSeq => "x" });
main::ex(bob => POST => "/api/chats/$priv/read", { upToSeq => 1 });
main::ex(bob => POST => "/api/chats/$priv/delivered", { upToSeq => -1 });
main::ex(bob => POST => "/api/chats/$priv/delivered", { upToSeq => 2 });
main::ex(alice => PUT => "/api/chats/$priv/settings", { muted => "x" });
main::ex(alice => PUT => "/api/chats/$priv/settings",
         { pinned => JSON::PP::true, mutedUntil => "2030-01-31T08:00:00Z" });
main::ex(dave => GET => "/api/chats/$grp");
main::ex(alice => GET => "/api/chats/$grp");
main::ex(alice => GET => "/api/chats/$priv");

# groups
main::ex(alice => PUT => "/api/chats/$grp", { name => "" });
main::ex(alice => PUT => "/api/chats/$grp", { name => "Team 2" });
main::ex(alice => PUT => "/api/chats/$grp", { name => "Team 2" });
main::ex(bob => POST => "/api/chats/$grp/members", { userIds => [ $I{dave} ] });
main::ex(alice => POST => "/api/chats/$grp/members",
         { userIds => [ $I{dave} ] });
main::ex(alice => PUT => "/api/chats/$grp/members/$I{dave}/role",
         { role => "owner" });
main::ex(alice => PUT => "/api/chats/$grp/members/$I{dave}/role",
         { role => "admin" });
main::ex(alice => DELETE => "/api/chats/$grp/members/$I{alice}");
main::ex(alice => DELETE => "/api/chats/$grp/members/$I{dave}");
main::ex(dave => POST => "/api/chats/$grp/leave");
main::ex(carol => POST => "/api/chats/$grp/leave");

# message operations
main::ex(alice => GET => "/api/messages/search");
main::ex(alice => GET => "/api/messages/search?q=hel");
main::ex(alice => GET => "/api/messages/$bad");
main::ex(alice => GET => "/api/messages/$mid");
main::ex(dave => GET => "/api/messages/$mid/receipts");
main::ex(alice => GET => "/api/messages/$mid/receipts");
main::ex(bob => PUT => "/api/messages/$mid", { content => "mine?" });
main::ex(alice => PUT => "/api/messages/$mid", { content => "hello again" });
main::ex(alice => POST => "/api/messages/$mid/react", { emoji => "a" });
main::ex(bob => POST => "/api/messages/$mid/react", { emoji => "\x{1F44D}" });
main::ex(alice => POST => "/api/messages/$mid/forward", { chatIds => [] });
main::ex(alice => POST => "/api/messages/$mid/forward",
         { chatIds => [ $grp ] });
main::ex(bob => DELETE => "/api/messages/$mid?forEveryone=true");
main::ex(bob => DELETE => "/api/messages/$mid");
main::ex(alice => DELETE => "/api/messages/$mid?forEveryone=true");

# stories
main::ex(alice => POST => "/api/stories", { type => "poem" });
my (undef, $st) = main::ex(alice => POST => "/api/stories",
    { type => "text", text => "a story", backgroundColor => "#112233" });
my $sid = $st->{story}{id};
main::ex(bob => GET => "/api/stories?limit=0");
main::ex(bob => GET => "/api/stories");
main::ex(alice => GET => "/api/stories/mine");
main::ex(bob => GET => "/api/stories/$bad");
main::ex(bob => GET => "/api/stories/$sid");
main::ex(alice => GET => "/api/stories/$sid");
main::ex(bob => POST => "/api/stories/$bad/view");
main::ex(bob => POST => "/api/stories/$sid/view");
main::ex(bob => POST => "/api/stories/$sid/view");
main::ex(alice => POST => "/api/stories/$sid/view");
main::ex(bob => GET => "/api/stories/$sid/views");
main::ex(alice => GET => "/api/stories/$sid/views");
main::ex(alice => POST => "/api/stories/$sid/react", { emoji => "\x{2764}" });
main::ex(bob => POST => "/api/stories/$sid/react", { emoji => "\x{2764}" });
main::ex(bob => DELETE => "/api/stories/$bad/react");
main::ex(bob => DELETE => "/api/stories/$sid/react");
main::ex(bob => GET => "/api/users/$I{alice}/stories");
main::ex(bob => GET => "/api/users/nope/stories");
main::ex(alice => POST => "/api/stories/highlights", { title => "" });
my (undef, $hl) = main::ex(alice => POST => "/api/stories/highlights",
    { title => "Best", storyIds => [ $sid ], privacy => "everyone" });
my $hid = $hl->{highlight}{id};
main::ex(alice => PUT => "/api/stories/highlights/$hid", {});
main::ex(alice => PUT => "/api/stories/highlights/$hid", { title => "Best 2" });
main::ex(bob => GET => "/api/users/$I{alice}/highlights");
main::ex(bob => GET => "/api/users/nope/highlights");
main::ex(bob => DELETE => "/api/stories/highlights/$hid");
main::ex(alice => DELETE => "/api/stories/highlights/$hid");
main::ex(bob => DELETE => "/api/stories/$sid");
main::ex(alice => DELETE => "/api/stories/$sid");

# calls
main::ex(alice => GET => "/api/calls/turn-credentials");
main::ex(alice => GET => "/api/calls/history?limit=0");
main::ex(alice => POST => "/api/calls/initiate",
         { userId => $I{bob}, type => "hologram" });
my (undef, $call) = main::ex(alice => POST => "/api/calls/initiate",
                             { userId => $I{bob}, type => "audio" });
my $cid = $call->{call}{id};
main::ex(alice => PUT => "/api/calls/$cid/end");
main::ex(alice => PUT => "/api/calls/$cid/end");
main::ex(alice => POST => "/api/calls/$cid/feedback", { rating => 9 });
main::ex(alice => POST => "/api/calls/$cid/feedback",
         { rating => 4, issues => [ "echo" ] });
main::ex(alice => GET => "/api/calls/history");
main::ex(carol => PUT => "/api/calls/$cid/end");

# every route that takes a token, without one
open my $fh, "<", "$ENV{TEST_NGINX_ROOT}/ngx_chat_module/api/"
                  . "ngx_http_chat_api.c" or die;
my $src = do { local $/; <$fh> };
while ($src =~ /\{ NGX_HTTP_(\w+), ngx_string\("([^"]+)"\),\s*([^,]*),/g) {
    my ($meth, $p, $flags) = ($1, $2, $3);
    next if $flags =~ /PUBLIC/;
    $p =~ s/:\w+/$bad/g;
    main::ex(undef, $meth => $p);
}

# the ends of sessions last: erin's current one, then dave's
main::ex(erin => DELETE => "/api/auth/sessions/$s->{items}[0]{id}");
main::ex(dave => POST => "/api/auth/logout");

$main::Got = main::check("answers", JSON::PP::encode_json(\@main::Ex));
--- response_body
ok
--- no_error_log
[error]
[alert]
[emerg]
