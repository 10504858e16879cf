# Media uploads: real types by their bytes, size limits, multipart,
# content-hash dedup, signed download URLs, Cloudinary, avatars.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatPng;
use ChatAuth;
use FakeHTTP;
use JSON::PP;
use HTTP::Tiny;
use Compress::Zlib ();
use Digest::SHA qw(hmac_sha256_hex sha1_hex);

our $Twilio = FakeHTTP->new;
$Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;

our $Cld = FakeHTTP->new;
$Cld->set_reply(200, '{"secure_url":"https://res.cloudinary.com/demo/'
                     . 'image/upload/x.png","public_id":"x"}');
$ENV{TEST_NGINX_FAKE_CLD_PORT} = $Cld->port;
$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

# outside the server root, which Test::Nginx removes between blocks
use File::Temp qw(tempdir);
our $Root = tempdir(CLEANUP => 1);
chmod 0777, $Root;
$ENV{TEST_NGINX_MEDIA_ROOT} = $Root;

our $Secret = "media-secret-0123456789abcdef0123456789";
our $Run = sprintf "%04d", $$ % 10000;
our %Tok;
our %Last;

sub token {
    $Tok{t} //= ChatAuth::sign_in($Twilio,
                                  sprintf("+1628556%04d", $Run), 'media');
    return $Tok{t};
}

# a PNG of w x h, unique by its seed
sub png {
    return ChatPng::png(@_);
}

our $Jpeg = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01"
    . "\x00\x00\xff\xdb\x00\x43\x00" . ("\x01" x 64)
    . "\xff\xc0\x00\x11\x08\x00\x10\x00\x20\x03\x01\x22\x00\x02\x11\x01"
    . "\x03\x11\x01\xff\xd9";
our $Pdf = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n"
    . "<< /Root 1 0 R >>\n%%EOF\n" . ("% $Run\n");

sub multipart {
    my ($data, $type, $close) = @_;
    my $b = "----chatboundary$Run";
    my $body = "--$b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
        . "hello\r\n--$b\r\nContent-Disposition: form-data; name=\"file\"; "
        . "filename=\"a.bin\"\r\nContent-Type: $type\r\n\r\n$data\r\n";
    $body .= "--$b--\r\n" if $close // 1;
    return ("multipart/form-data; boundary=$b", $body);
}

sub upload {
    my ($path, $ctype, $body) = @_;
    my $r = HTTP::Tiny->new->post(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => $ctype,
                       Authorization => "Bearer " . token()->{accessToken} },
          content => $body });
    my $j = eval { decode_json($r->{content}) } // {};
    return ($r->{status}, $j);
}

# the block's request: the upload itself
sub req {
    my ($block, $ctype, $body, $path) = @_;
    $block->set_value("request", "POST " . ($path // "/api/media") . "\n"
                      . $body);
    $block->set_value("more_headers", "Content-Type: $ctype\n"
                      . "Authorization: Bearer " . token()->{accessToken});
}

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->extra_http_config // '';
    $block->set_value("http_config", ChatTest::chat_http_config() . qq{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:\$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_resend_delay 1s;
    chat_otp_ip_limit 1000;
    chat_media_url_secret "$Secret";
    chat_media_root \$TEST_NGINX_MEDIA_ROOT;
$extra});

    $block->set_value("config", q{
    location /api/ { chat_api; client_max_body_size 200m; }
    location /media/ { chat_media; }
}) unless defined $block->config;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a PNG as a raw body: its type and dimensions from its bytes
--- init
main::req($block, "application/octet-stream", main::png(3, 2, $main::Run));
--- request
GET /
--- response_body_like: ^\{"media":\{"id":"[0-9a-f]{24}","url":"/media/[0-9a-f]{24}\?exp=\d+&sig=[0-9a-f]{64}","size":\d+,"mimeType":"image/png","width":3,"height":2,"createdAt":"[^"]+"\}\}$
--- error_code: 201



=== TEST 2: a JPEG in multipart/form-data, after another field
--- init
main::req($block, main::multipart($main::Jpeg . $main::Run, "image/jpeg"));
--- request
GET /
--- response_body_like: "mimeType":"image/jpeg","width":32,"height":16
--- error_code: 201



=== TEST 3: a PDF
--- init
main::req($block, "application/pdf", $main::Pdf);
--- request
GET /
--- response_body_like: "mimeType":"application/pdf"
--- error_code: 201



=== TEST 4: PDF bytes declared as image/png (raw and multipart): 415
--- init
main::req($block, "image/png", $main::Pdf);
my ($s) = main::upload("/api/media", main::multipart($main::Pdf, "image/png"));
die "multipart lie: $s" unless $s == 415;
--- request
GET /
--- response_body_like: "code":"unsupported_media_type"
--- error_code: 415



=== TEST 5: an unsupported type (an ELF-like binary): 415
--- init
main::req($block, "application/octet-stream",
          "\x7fELF\x02\x01\x01\0" . ("\0" x 56));
--- request
GET /
--- response_body_like: "code":"unsupported_media_type"
--- error_code: 415



=== TEST 6: an image over chat_media_max_image: 413
--- extra_http_config
    chat_media_max_image 1k;
--- init
main::req($block, "image/png", main::png(40, 40, 7) . ("\0" x 2048));
--- request
GET /
--- response_body_like: "code":"payload_too_large"
--- error_code: 413



=== TEST 7: a truncated multipart body (no closing boundary): 400
--- init
main::req($block, main::multipart(main::png(2, 2, 9), "image/png", 0));
--- request
GET /
--- response_body_like: "code":"invalid_multipart"
--- error_code: 400



=== TEST 8: the same bytes twice give the same id; the download works
--- init
my $png = main::png(5, 4, $main::Run + 1);
my ($s1, $a) = main::upload("/api/media", "image/png", $png);
my ($s2, $b) = main::upload("/api/media", main::multipart($png, "image/png"));
die "dedup: $s1 $s2" unless $s1 == 201 && $s2 == 200
    && $a->{media}{id} eq $b->{media}{id};
$block->set_value("request", "GET $a->{media}{url}");
$block->set_value("response_body", $png);
--- request
GET /
--- response_headers
Content-Type: image/png
--- error_code: 200



=== TEST 9: a bad signature: 403
--- init
my ($s, $a) = main::upload("/api/media", "image/png", main::png(1, 1, 3));
(my $url = $a->{media}{url}) =~ s/sig=(.)/"sig=" . ($1 eq "0" ? "1" : "0")/e;
$block->set_value("request", "GET $url");
--- request
GET /
--- response_body_like: "code":"invalid_signature"
--- error_code: 403



=== TEST 10: an expired URL, correctly signed: 403
--- init
my ($s, $a) = main::upload("/api/media", "image/png", main::png(1, 1, 3));
my $id = $a->{media}{id};
my $exp = time - 10;
my $sig = Digest::SHA::hmac_sha256_hex("$id:$exp", $main::Secret);
$block->set_value("request", "GET /media/$id?exp=$exp&sig=$sig");
--- request
GET /
--- response_body_like: "code":"url_expired"
--- error_code: 403



=== TEST 11: no token: 401
--- request
POST /api/media
abc
--- more_headers
Content-Type: image/png
--- error_code: 401
--- response_body_like: "code"



=== TEST 12: upload-avatar sets the avatar; a PDF is refused
--- init
my ($s) = main::upload("/api/users/upload-avatar", "application/pdf",
                       $main::Pdf);
die "avatar pdf: $s" unless $s == 415;
main::req($block, "image/png", main::png(8, 8, $main::Run + 2),
          "/api/users/upload-avatar");
my $uid = main::token()->{user}{id};
$block->set_value("response_body_like",
    qr/^\{"media":\{"id":"([0-9a-f]{24})".*"user":\{"id":"$uid","avatar":"\1"\}\}$/);
--- request
GET /
--- error_code: 201



=== TEST 13: Cloudinary: a signed upload with the file's bytes
--- extra_http_config
    chat_media_storage cloudinary;
    chat_cloudinary_base_url http://127.0.0.1:$TEST_NGINX_FAKE_CLD_PORT;
    chat_cloudinary_cloud_name demo;
    chat_cloudinary_api_key 1234;
    chat_cloudinary_api_secret cldsecret;
--- init
$main::Cld->clear;
$main::Last{png} = main::png(6, 6, $main::Run + 3);
main::req($block, "image/png", $main::Last{png});
--- request
GET /
--- response_body_like: "url":"https://res.cloudinary.com/demo/image/upload/x.png","size":\d+,"mimeType":"image/png","width":6,"height":6
--- error_code: 201



=== TEST 14: what the fake Cloudinary got
--- init
my @r = $main::Cld->requests;
die "cloudinary requests: " . scalar(@r) unless @r == 1;
my $req = $r[0];
die "path $req->{path}" unless $req->{path} eq "/v1_1/demo/auto/upload";
my %f;
my ($b) = $req->{headers}{'content-type'} =~ /boundary=(\S+)/;
for my $part (split /--\Q$b\E/, $req->{body}) {
    my ($h, $v) = split /\r\n\r\n/, $part, 2;
    next unless defined $v && $h =~ /name="([^"]+)"/;
    my $name = $1;
    $v =~ s/\r\n$//;
    $f{$name} = $v;
}
die "api_key" unless $f{api_key} eq "1234";
die "signature" unless $f{signature} eq
    Digest::SHA::sha1_hex("timestamp=$f{timestamp}cldsecret");
die "timestamp" unless abs($f{timestamp} - time) < 60;
die "file bytes" unless $f{file} eq $main::Last{png};
--- request
GET /healthz
--- config
    location /healthz { chat_healthz; }
--- error_code: 200



=== TEST 15: a GIF: its dimensions from its header
--- init
my $gif = "GIF89a\x07\x00\x03\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
        . "!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x07\x00\x03\x00"
        . "\x00\x02\x02D\x01\x00;" . pack("N", $main::Run);
main::req($block, "image/gif", $gif);
--- request
GET /
--- response_body_like: "mimeType":"image/gif","width":7,"height":3
--- error_code: 201



=== TEST 16: a chunked image over chat_media_max_image: 413 after reading
--- extra_http_config
    chat_media_max_image 1k;
--- init
my $body = main::png(40, 40, 11) . ("\0" x 2048);
$block->set_value("raw_request", "POST /api/media HTTP/1.1\r\n"
    . "Host: localhost\r\nContent-Type: image/png\r\n"
    . "Authorization: Bearer " . main::token()->{accessToken} . "\r\n"
    . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    . sprintf("%x\r\n", length $body) . $body . "\r\n0\r\n\r\n");
--- raw_request
placeholder
--- response_body_like: "code":"payload_too_large"
--- error_code: 413



=== TEST 17: Cloudinary down: 502, and nothing is stored
--- extra_http_config
    chat_media_storage cloudinary;
    chat_cloudinary_base_url http://127.0.0.1:$TEST_NGINX_FAKE_CLD_PORT;
    chat_cloudinary_cloud_name demo;
    chat_cloudinary_api_key 1234;
    chat_cloudinary_api_secret cldsecret;
--- init
$main::Cld->set_reply(500, '{"error":{"message":"boom"}}');
main::req($block, "image/png", main::png(9, 9, $main::Run + 5));
--- request
GET /
--- response_body_like: "code":"storage_unavailable"
--- error_code: 502
--- error_log
cloudinary
--- no_error_log
[alert]
[emerg]



=== TEST 18: a Cloudinary file's signed URL redirects to Cloudinary
--- extra_http_config
    chat_media_storage cloudinary;
    chat_cloudinary_base_url http://127.0.0.1:$TEST_NGINX_FAKE_CLD_PORT;
    chat_cloudinary_cloud_name demo;
    chat_cloudinary_api_key 1234;
    chat_cloudinary_api_secret cldsecret;
--- init
$main::Cld->set_reply(200, '{"secure_url":"https://res.cloudinary.com/demo/image/upload/y.png","public_id":"y"}');
my ($s, $a) = main::upload("/api/media", "image/png", main::png(2, 9, $main::Run + 6));
die "upload $s" unless $s == 201;
my $id = $a->{media}{id};
my $exp = time + 600;
my $sig = Digest::SHA::hmac_sha256_hex("$id:$exp", $main::Secret);
$block->set_value("request", "GET /media/$id?exp=$exp&sig=$sig");
--- request
GET /
--- response_headers
Location: https://res.cloudinary.com/demo/image/upload/y.png
--- error_code: 302
