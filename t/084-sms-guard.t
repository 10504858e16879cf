# The SMS-pumping guard cannot be turned against a country's users
# (issue 21): a flood of codes to new numbers exhausts the country's
# limit, and new numbers of that country are refused, but a number that
# has an account still gets its code (and signs in), with its own, its
# address's and its daily limits holding.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatAuth;
use ChatRedis;
use JSON::PP;
use Time::HiRes qw(sleep);

our $Got;

# a Redis of our own: the country's count must not hold other files'
# sends, nor theirs this one's
our $Redis;
BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    ChatChats::init("784", "chat_otp_country_limit 5;\n"
                    . "    chat_otp_resend_delay 1s;");
}
END { $Redis->stop if $Redis }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

sub main::send_otp {
    my ($phone) = @_;
    my $r = HTTP::Tiny->new->post(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/send-otp",
        { headers => { 'Content-Type' => 'application/json' },
          content => encode_json({ phone => $phone }) });
    my $b = eval { decode_json($r->{content}) } || {};
    return "$r->{status}" . ($b->{error} ? " $b->{error}{code}" : "")
        . ($r->{headers}{'retry-after'} ? " retry-after" : "");
}

# one block: a reload between blocks (TEST_NGINX_USE_HUP) would add nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: five new numbers (three sign-ups, two more) use up the country's limit; a sixth is refused; a number with an account still gets its code and signs in; the next new one is still refused
--- init
# alice, bob and carol sign up: three of the country's five
ChatChats::setup();
my @r;
my $run = $$ % 1000;
my @new = map { sprintf("+1628784%04d", 5000 + ($run * 7 + $_) % 4000) } 1 .. 2;
push @r, "new: " . join(",", map { main::send_otp($_) } @new);
push @r, "sixth new: " . main::send_otp(sprintf("+1628784%04d", 9100 + $run % 800));
# bob signed up before the flood too; his number asks again (past its
# resend delay: that limit is the number's own and holds)
sleep 1.2;
$ChatChats::Twilio->clear;
push @r, "bob, an account: " . main::send_otp($ChatChats::Phone{bob});
my $code = ChatAuth::code_for($ChatChats::Twilio, $ChatChats::Phone{bob});
push @r, "code sent: " . ($code =~ /^\d{6}$/ ? "yes" : "no");
my $v = HTTP::Tiny->new->post(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/verify-otp",
    { headers => { 'Content-Type' => 'application/json' },
      content => JSON::PP::encode_json({ phone => $ChatChats::Phone{bob}, code => $code,
                               device => "t" }) });
push @r, "signed in: $v->{status}";
push @r, "another new: " . main::send_otp(sprintf("+1628784%04d", 9950 + $run % 40));
$main::Got = join "\n", @r;
--- request
GET /placeholder
--- config
location /api/ { chat_api; }
location = /placeholder { return 200; }
--- response_body
new: 200,200
sixth new: 429 rate_limited retry-after
bob, an account: 200
code sent: yes
signed in: 200
another new: 429 rate_limited retry-after
