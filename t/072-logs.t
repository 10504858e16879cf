# The shipped access log (nginx.conf.d/nginx.conf's log_format chat, taken
# from the file as it ships): one JSON object a line, with the request id
# the answer's X-Request-Id carries, the user of the access token, the
# route's pattern, the status and the times; a request without a token
# logs an empty user.  The module's own error log lines of a request name
# its request id (the one-time code's SMS, sent on the request's behalf).
# The production example logs the same JSON.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use Time::HiRes ();

our ($Got, $LogConf, $ProdFormat, $ShippedFormat);

BEGIN {
    # the shipped access log format, as nginx.conf has it
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    my $read = sub {
        open my $fh, "<", "$root/nginx.conf.d/$_[0]" or die "$_[0]: $!";
        local $/;
        return <$fh>;
    };
    my $conf = $read->("nginx.conf");
    my ($map) = $conf =~ /^(    map \S+ \$chat_log_request \{.*?^    \}\n)/ms;
    my ($fmt) = $conf =~ /^(    log_format chat .*?;\n)/ms;
    $LogConf = ($map // "") . ($fmt // "");
    $ShippedFormat = $fmt // "";

    my $prod = $read->("production.conf.example");
    ($ProdFormat) = $prod =~ /^(log_format chat .*?;\n)/ms;
    $ProdFormat //= "";

    ChatChats::init("672", $LogConf . "    access_log logs/chat.log chat;");
}

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->init) {
        $block->set_value("request", "GET /t");
        $block->set_value("response_body_filters", sub { "$main::Got\n" });
    }
});

sub main::http { HTTP::Tiny->new(timeout => 10) }

# -> (the answer, the access log's line of its X-Request-Id, decoded)
sub main::logged {
    my ($method, $path, $token) = @_;
    my $res = main::http()->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { $token ? (Authorization => "Bearer $token") : () } });
    my $id = $res->{headers}{"x-request-id"} // "none";
    # a request is logged after its answer went out: it may come late
    my $line;
    for (1 .. 100) {
        if (open my $fh, "<", "$ENV{TEST_NGINX_SERVROOT}/logs/chat.log") {
            ($line) = grep { index($_, "\"$id\"") >= 0 } <$fh>;
        }
        last if $line;
        Time::HiRes::sleep(0.05);
    }
    return ($res, undef) unless $line;
    my $json = eval { decode_json($line) };
    return ($res, $json // { unparsed => $line });
}

sub main::num { defined $_[0] && $_[0] =~ /^\d+(\.\d+)?$/ ? "number" : "?" }

run_tests();

__DATA__

=== TEST 1: a request with a token: one JSON line with its request id, user, route, status and times
--- config
    location /api/ { chat_api; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my ($res, $j) = main::logged("GET", "/api/users/$ChatChats::Id{bob}",
                             $ChatChats::Tok{alice}{accessToken});
my @r = ($res->{status}, $j ? "logged" : "not logged");
$j //= {};
push @r, ($j->{request_id} // "") eq $res->{headers}{"x-request-id"}
    ? "same id" : "id " . ($j->{request_id} // "none");
push @r, ($j->{user_id} // "") eq $ChatChats::Id{alice}
    ? "alice" : "user " . ($j->{user_id} // "none");
push @r, "route " . ($j->{route} // "none"), "status " . ($j->{status} // "");
push @r, $j->{method} // "", main::num($j->{request_time}),
    main::num($j->{store_time});
# the profile is read from MongoDB after the token's session check
push @r, ($j->{store_time} // 0) <= ($j->{request_time} // 0) + 0.001
    ? "store within request" : "store $j->{store_time} > $j->{request_time}";
push @r, $j->{request} =~ m{^GET /api/users/[0-9a-f]{24} HTTP/1\.1$}
    ? "request line" : "request " . ($j->{request} // "none");
$main::Got = join " ", @r;
--- response_body
200 logged same id alice route /api/users/:id status 200 GET number number store within request request line



=== TEST 2: without a token the user is empty; a path no route takes logs no route
--- config
    location /api/ { chat_api; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my ($res, $j) = main::logged("GET", "/api/users/$ChatChats::Id{bob}");
$j //= {};
my @r = ($res->{status}, exists $j->{user_id} ? "user \"$j->{user_id}\""
                                              : "no user field");
push @r, "route " . ($j->{route} // "none"), "status " . ($j->{status} // "");
# nothing waited on a back end: refused before
push @r, defined $j->{store_time} && $j->{store_time} == 0
    ? "store 0" : "store " . ($j->{store_time} // "none");
($res, $j) = main::logged("GET", "/api/nothing/here",
                          $ChatChats::Tok{alice}{accessToken});
$j //= {};
push @r, $res->{status}, "route \"" . ($j->{route} // "none") . "\"",
    "status " . ($j->{status} // "");
$main::Got = join " ", @r;
--- response_body
401 user "" route /api/users/:id status 401 store 0 404 route "" status 404



=== TEST 3: a line the module logs for a request names its request id
--- http_config eval
ChatTest::chat_http_config() . "    chat_sms_provider log;\n"
    . "    chat_otp_ip_limit 1000000;\n"
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
X-Request-Id: otp-072-trace
--- request eval
"POST /api/auth/send-otp\n"
. qq({"phone":"+1628672) . sprintf("%04d", ($$ + 50) % 10000) . qq("})
--- error_code: 200
--- error_log eval
qr/\[notice\] .*chat sms: to \+1628672\d{4}: \d{6} is your verification code.*request_id: "otp-072-trace"/
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: the production example logs the same JSON lines
--- config
    location = /t { return 200 "t"; }
--- init
my ($a, $b) = ($main::ShippedFormat, $main::ProdFormat);
s/\s+/ /g for $a, $b;
s/^ //, s/ $// for $a, $b;
$main::Got = ($a ne "" && $a eq $b) ? "same" : "differ:\n$a\n$b";
--- response_body
same
