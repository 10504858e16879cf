# The browser client (web/) in headless Chromium: two pages, two users
# signing in with the codes of the log SMS provider, a private chat
# started by number, typing seen live, a message sent over Socket.IO
# arriving on the other page, the read receipt back.  The pages are
# driven by t/lib/web-client.js (puppeteer-core and Debian's chromium,
# from tools/bootstrap); screenshots of both go to build/t083/.  The
# client is served at /web/ here (Test::Nginx has its own location /),
# at / by the dev stack.

use Test::Nginx::Socket;
use Cwd qw(abs_path);
use JSON::PP ();
use ChatTest;

# a browser end to end: what it checks is the same in every pass
if ($ENV{TEST_NGINX_USE_HUP} || !$ENV{TEST_NGINX_LOAD_MODULES}) {
    plan skip_all => "the plain pass only (not under --asan or reload)";
}

our $Root;
BEGIN {
    $Root = abs_path($ENV{TEST_NGINX_ROOT} || ".");
    $ENV{TEST_NGINX_WEB_ROOT} = "$Root/web";
    $ENV{TEST_NGINX_SIO_BUNDLE} = "$Root/.deps/sio-client/node_modules/"
        . "socket.io-client/dist/socket.io.min.js";
    $ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;
}

if (!-x "/usr/bin/chromium" || !-d "$Root/.deps/browser/node_modules") {
    plan skip_all => "no chromium or puppeteer-core: run tools/bootstrap";
}

plan 'no_plan';

our $Got;

sub main::browser {
    my $run = $$ % 10000;
    # the screenshots: build/ (t/servroot/ must hold only what
    # Test::Nginx removes before a run)
    my $shots = "$Root/build/t083";
    mkdir "$Root/build";
    mkdir $shots;
    my $cfg = JSON::PP->new->canonical->encode({
        url => "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/web/",
        errorLog => $Test::Nginx::Util::ErrLogFile,
        phones => { alice => sprintf("+1628583%04d", $run),
                    bob => sprintf("+1628583%04d", ($run + 1) % 10000) },
        shots => $shots,
    });
    local $ENV{CHAT_BROWSER} = "$Root/.deps/browser";
    my $out = `node $Root/t/lib/web-client.js '$cfg'`;
    my $r = eval { JSON::PP::decode_json($out) } or return "bad output: $out";
    # the pages' text in ASCII: a character beyond it as U+XXXX
    return join "\n", map {
        (my $v = "$_=$r->{$_}") =~ s/([^\x00-\x7f])/sprintf "U+%04X", ord $1/ge;
        $v
    } sort keys %$r;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: two users in two browser pages: a chat, typing, a message live, a read receipt
--- http_config eval
ChatTest::chat_http_config() . "
    chat_sms_provider log;
    chat_otp_ip_limit 1000000;
"
--- config
    location /api/ { chat_api; }
    location /socket.io/ { chat_socketio; }
    location /web/ {
        # as nginx.conf.d/nginx.conf serves it
        types {
            text/html html;
            text/css css;
            text/javascript js;
        }
        charset utf-8;
        charset_types text/css text/javascript;
        alias $TEST_NGINX_WEB_ROOT/;
        location = /web/socket.io.min.js { alias $TEST_NGINX_SIO_BUNDLE; }
    }
--- init
$main::Got = main::browser();
--- request
GET /web/index.html
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body_like
^aliceList=hello from the browser
bobTitle=\+1628583\d{4}
pageErrors=none
receipt=U\+2713U\+2713 read
received=hello from the browser
signedIn=1
styled=1
typing=\+1628583\d{4} is typingU\+2026
typingGone=1
--- timeout: 30
