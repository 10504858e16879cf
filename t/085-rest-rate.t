# REST rate limits per route group (issue 21): every route is in a group
# (auth, read, write, send, search, group, upload) with a token bucket per
# user, or per address for the public sign-in routes, plus a bucket per
# address for every route ("address"), all in one shared-memory zone
# (chat_rest_rate, chat_rest_rate_zone).  A request over a bucket is
# answered 429 rate_limited with Retry-After and details.retryAfter; every
# answer of a limited route carries RateLimit-Limit, RateLimit-Remaining
# and RateLimit-Reset.  Small limits keep the file fast.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    # added first, so run after ChatChats' sets the http{} part: a zone of
    # the block's own size, as a reload (TEST_NGINX_USE_HUP) keeps the
    # buckets of a zone of the same size
    add_block_preprocessor(sub {
        my $block = shift;
        $block->set_value("http_config", $block->http_config
            . "    chat_rest_rate_zone " . (1024 + 64 * $block->seq_num)
            . "k;\n");
    });
    ChatChats::init("785");
}

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die;
    $block->set_value("config",
                      $block->config . "\n    location = /t { return 200 \"t\"; }\n");
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 30);
});

# -> { status, code, retry (Retry-After), details, limit, left, reset }
sub main::hit {
    my ($who, $method, $path, $data) = @_;
    my %h = ('Content-Type' => 'application/json');
    $h{Authorization} = "Bearer $ChatChats::Tok{$who}{accessToken}"
        if defined $who;
    my $r = HTTP::Tiny->new->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => \%h,
          (defined $data ? (content => encode_json($data)) : ()) });
    my $b = eval { decode_json($r->{content}) } // {};
    my $e = ref $b eq 'HASH' ? $b->{error} : undef;
    return { status => $r->{status},
             code => $e ? $e->{code} : undef,
             message => $e ? $e->{message} : undef,
             details => $e ? $e->{details} : undef,
             retry => $r->{headers}{'retry-after'},
             limit => $r->{headers}{'ratelimit-limit'},
             left => $r->{headers}{'ratelimit-remaining'},
             reset => $r->{headers}{'ratelimit-reset'} };
}

# "ok" for a 429 as it must be, else what is wrong with it
sub main::refusal {
    my ($a, $limit) = @_;
    return "status $a->{status}" unless $a->{status} == 429;
    return "code" unless ($a->{code} // "") eq "rate_limited"
                         && length($a->{message} // "");
    return "retry-after" unless ($a->{retry} // "") =~ /^\d+$/
                                && $a->{retry} >= 1;
    return "details" unless ref $a->{details}
        && ($a->{details}{retryAfter} // -1) == $a->{retry};
    return "headers" unless ($a->{limit} // "") eq $limit
                            && ($a->{left} // "") eq "0"
                            && ($a->{reset} // "") =~ /^\d+$/
                            && $a->{reset} >= 1;
    return "ok";
}

sub main::statuses { join " ", map { $_->{status} } @_ }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: search (2r/s burst=3): alice's first three answered with RateLimit-* counting down, the next refused 429 with Retry-After, details.retryAfter and Remaining 0; bob searches at once; after Retry-After alice searches again; the refusals are counted
--- config
    location /api/ { chat_api; chat_rest_rate search 2r/s burst=3; }
    location = /metrics { chat_metrics; }
--- init
ChatChats::setup();
my @r;
my @a = map { main::hit(alice => GET => "/api/messages/search?q=hello") } 1 .. 5;
push @r, "alice:" . main::statuses(@a);
push @r, "limit:" . join(",", map { $_->{limit} // "-" } @a[0 .. 2]);
push @r, "left:" . join(",", map { $_->{left} // "-" } @a[0 .. 2]);
push @r, "refused:" . main::refusal($a[3], 3) . "," . main::refusal($a[4], 3);
my $b = main::hit(bob => GET => "/api/messages/search?q=hello");
push @r, "bob:$b->{status} left:$b->{left}";
sleep($a[4]{retry} + 0.1);
push @r, "again:" . main::hit(alice => GET => "/api/messages/search?q=hello")->{status};
my $m = HTTP::Tiny->new->get(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
my ($n) = $m =~ /^chat_rest_rate_limited_total\{group="search"\} (\d+)/m;
push @r, "counted:" . (defined $n && $n >= 2 ? "yes" : $n // "none");
$main::Got = join " ", @r;
--- response_body
alice:200 200 200 429 429 limit:3,3,3 left:2,1,0 refused:ok,ok bob:200 left:2 again:200 counted:yes



=== TEST 2: group creation (1r/m burst=2): alice's third group refused with a wait of about a minute; bob creates one at once; other routes of alice still answer, with their own group's headers
--- config
    location /api/ { chat_api; chat_rest_rate group 1r/m burst=2; chat_rest_rate read 50r/s burst=500; }
--- init
ChatChats::setup();
my @r;
my @a = map { main::hit(alice => POST => "/api/chats/group",
                        { name => "rate $_", memberIds => [ $main::Id{bob} ] }) } 1 .. 3;
push @r, "alice:" . main::statuses(@a);
push @r, "refused:" . main::refusal($a[2], 2);
push @r, "wait:" . ($a[2]{retry} >= 30 && $a[2]{retry} <= 63 ? "a minute" : $a[2]{retry});
my $b = main::hit(bob => POST => "/api/chats/group",
                  { name => "bob's", memberIds => [ $main::Id{alice} ] });
push @r, "bob:$b->{status}";
my $l = main::hit(alice => GET => "/api/chats");
push @r, "list:$l->{status} limit:$l->{limit}";
$main::Got = join " ", @r;
--- response_body
alice:201 201 429 refused:ok wait:a minute bob:201 list:200 limit:500



=== TEST 3: sends (1r/s burst=2) and "off": alice's third send refused, bob's answered; with search off twenty searches are all answered
--- config
    location /api/ { chat_api; chat_rest_rate send 1r/s burst=2; chat_rest_rate search off; }
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $main::Id{bob} })->{chat}{id};
my $t = int(time() * 1000);
my @a = map { main::hit(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "rate-$t-$_", type => "text", content => "m$_" }) } 1 .. 3;
push @r, "alice:" . main::statuses(@a);
push @r, "refused:" . main::refusal($a[2], 2);
my $b = main::hit(bob => POST => "/api/messages",
    { chatId => $chat, tempId => "rate-$t-b", type => "text", content => "b" });
push @r, "bob:$b->{status}";
my %s;
$s{ main::hit(carol => GET => "/api/users/search?q=al")->{status} }++ for 1 .. 20;
push @r, "search:" . join(",", map { "$_ x $s{$_}" } sort keys %s);
$main::Got = join " ", @r;
--- response_body
alice:201 201 429 refused:ok bob:201 search:200 x 20



=== TEST 4: every route per address (burst=6): alice and bob from one address share it, the seventh request is refused whatever the user
--- config
    location /api/ { chat_api; chat_rest_rate address 1r/m burst=6; }
--- init
ChatChats::setup();
my @a;
for (1 .. 4) {
    push @a, main::hit(alice => GET => "/api/users/profile");
    push @a, main::hit(bob => GET => "/api/users/profile");
}
$main::Got = main::statuses(@a) . " refused:" . main::refusal($a[6], 6);
--- response_body
200 200 200 200 200 200 429 429 refused:ok



=== TEST 5: a public route per address (auth 1r/m burst=3): refresh-token with unknown tokens answered 401 three times, then refused 429 before the token is looked at
--- config
    location /api/ { chat_api; chat_rest_rate auth 1r/m burst=3; }
--- init
my @a = map { main::hit(undef, POST => "/api/auth/refresh-token",
                        { refreshToken => "0123456789abcdef01234567.nope$_" }) } 1 .. 5;
$main::Got = main::statuses(@a) . " refused:" . main::refusal($a[3], 3)
    . " limit:" . ($a[0]{limit} // "-");
--- response_body
401 401 401 429 429 refused:ok limit:3



=== TEST 6: an unknown route group is refused at start
--- config
    location /api/ { chat_api; chat_rest_rate chats 10r/s; }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown route group "chats"/



=== TEST 7: a rate that is not Nr/s or Nr/m is refused at start
--- config
    location /api/ { chat_api; chat_rest_rate search 10x burst=5; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_rest_rate" directive has an invalid rate/
