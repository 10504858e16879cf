# Phone numbers through libphonenumber, region by region: for every line of
# t/data/phone-regions.tsv (tools/gen-phone-fixtures) send-otp takes the
# national format with its region and answers with the E.164 form, and
# refuses the too short variant; toll-free numbers and landlines are
# refused as not mobile, an unknown country as such.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use File::Basename qw(dirname);
use JSON::PP ();

# a Redis of our own: the per-number resend delay must not remember the
# sends of other test files to the same example numbers
our $Redis = ChatRedis->new->start;
$ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
END { $Redis->stop if $Redis }

# region, calling code, E.164, national format, too short E.164
our @Regions;

open my $tsv, '<', dirname(__FILE__) . "/data/phone-regions.tsv"
    or die "phone-regions.tsv: $!";
while (<$tsv>) {
    next if /^#/;
    chomp;
    my @f = split /\t/;
    die "phone-regions.tsv line $.: want 5 fields" unless @f == 5;
    push @Regions, \@f;
}
close $tsv;
die "phone-regions.tsv has no regions" unless @Regions;

our $HttpConfig = ChatTest::chat_http_config() . <<'_EOC_';
    chat_otp_ip_limit 1000000;
    chat_otp_country_limit 1000000;
    chat_sms_provider log;
_EOC_

sub send_otp {
    my %body = @_;
    my $json = JSON::PP->new->canonical->encode(\%body);
    return "POST /api/auth/send-otp\n$json";
}

# one request for each region; a few share their example with the main
# region of their calling code (AX and FI): one send to each number, since
# a second one within 30 s is refused with a 429
my %seen;
our @Unique = grep { !$seen{$_->[2]}++ } @Regions;
our @Valid = map { send_otp(phone => $_->[3], countryCode => $_->[0]) }
             @Unique;
our @ValidBody = map { qr/"phone":"\Q$_->[2]\E"/ } @Unique;
our @Invalid = map { send_otp(phone => $_->[4]) } @Regions;
our @InvalidBody = map { qr/"code":"invalid_phone"/ } @Regions;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: every region's example mobile, national format + region: E.164
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request eval: [@::Valid]
--- error_code eval: [(200) x @::Valid]
--- response_body_like eval: [@::ValidBody]



=== TEST 2: every region's example cut short by three digits: invalid_phone
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request eval: [@::Invalid]
--- error_code eval: [(422) x @::Invalid]
--- response_body_like eval: [@::InvalidBody]



=== TEST 3: a US toll-free number cannot receive SMS
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"+1 800 253 0000"}
--- error_code: 422
--- response_body_like: "code":"phone_not_mobile"



=== TEST 4: a Berlin landline, national format with the region: not mobile
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"030 901820","countryCode":"DE"}
--- error_code: 422
--- response_body_like: "code":"phone_not_mobile"



=== TEST 5: the same landline in E.164: not mobile
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"+49 30 901820"}
--- error_code: 422
--- response_body_like: "code":"phone_not_mobile"



=== TEST 6: an unknown country: invalid_country
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"01512 3456789","countryCode":"XX"}
--- error_code: 422
--- response_body_like: "code":"invalid_country"



=== TEST 7: a national number without a country: invalid_phone
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"01512 3456789"}
--- error_code: 422
--- response_body_like: "code":"invalid_phone"



=== TEST 8: a calling code as the country hint
--- http_config eval: $::HttpConfig
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"(415) 555-0132","countryCode":"+1"}
--- error_code: 200
--- response_body_like: "phone":"\+14155550132"
