# Media hardening (issue 21): another user's identical upload gets a media
# document of its own (its own id and time, nothing of the first) over
# bytes stored once; downloads that a browser could render as a page are
# attachments, every download is sandboxed and never sniffed, text says
# its charset; images stay inline; API and polling answers stay no-store.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatPng;
use ChatAuth;
use FakeHTTP;
use JSON::PP;
use HTTP::Tiny;
use Compress::Zlib ();
use Digest::SHA ();
use File::Find ();
use IO::Compress::Zip ();
use Time::HiRes ();
use ChatMongo;

our $Twilio = FakeHTTP->new;
$Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;
$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

# a media root of this file alone, outside the server root (which
# Test::Nginx removes between blocks): what is in it is what we stored
use File::Temp qw(tempdir);
our $Root = tempdir(CLEANUP => 1);
chmod 0777, $Root;
$ENV{TEST_NGINX_MEDIA_ROOT} = $Root;

our $Run = sprintf "%04d", $$ % 10000;
our %Tok;
our %Got;

sub token {
    my $who = shift;
    my %phone = (alice => "+1628557", bob => "+1628558");
    $Tok{$who} //= ChatAuth::sign_in($Twilio, $phone{$who} . $Run, 'media');
    return $Tok{$who};
}

# a PNG of w x h, unique by its seed
sub png {
    return ChatPng::png(@_);
}

sub http { return HTTP::Tiny->new(timeout => 10) }

sub upload {
    my ($who, $ctype, $body) = @_;
    my $r = http()->post(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/media",
        { headers => { 'Content-Type' => $ctype,
                       Authorization => "Bearer "
                                        . token($who)->{accessToken} },
          content => $body });
    my $j = eval { decode_json($r->{content}) } // {};
    return ($r->{status}, $j, $r);
}

sub get {
    my $url = shift;
    return http()->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$url");
}

# the regular files under the media root
sub stored_files {
    my @f;
    File::Find::find({ no_chdir => 1,
                       wanted => sub { push @f, $_ if -f $_ } }, $Root);
    return @f;
}

sub iso_to_epoch {
    my ($y, $mo, $d, $h, $mi, $s) =
        $_[0] =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)/ or return -1;
    require Time::Local;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y);
}

# an upload of the block, its signed URL as the block's request
sub download_of {
    my ($block, $ctype, $body) = @_;
    my ($s, $j) = upload("alice", $ctype, $body);
    die "upload $ctype: $s" unless $s == 201 || $s == 200;
    $Got{id} = $j->{media}{id};
    $block->set_value("request", "GET $j->{media}{url}");
    return $j;
}

# the block's request as this user
sub as {
    my ($block, $who) = @_;
    $block->set_value("more_headers",
                      "Authorization: Bearer " . token($who)->{accessToken});
}

# what the block's download must carry: saved as <id>.<ext>, sandboxed
sub attachment {
    my ($block, $ctype, $ext) = @_;
    $block->set_value("response_headers",
        "Content-Type: $ctype\n"
        . "Content-Disposition: attachment; filename=\"$Got{id}.$ext\"\n"
        . "Content-Security-Policy: sandbox\n"
        . "X-Content-Type-Options: nosniff\n");
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_resend_delay 1s;
    chat_otp_ip_limit 1000;
    chat_media_url_secret "media-secret-0123456789abcdef0123456789";
    chat_media_root $TEST_NGINX_MEDIA_ROOT;
});

    $block->set_value("config", q{
    location /api/ { chat_api; client_max_body_size 20m; }
    location /media/ { chat_media; }
    location /socket.io/ { chat_socketio; }
}) unless defined $block->config;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an older build's unique index on the hash alone
--- init
# as a build before this one left it: the next start must drop it, or a
# second owner of the same bytes is refused (TEST 2)
my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
# such an index stood over one document per content at most: the files
# run before this one may have left two users' documents of the same
# bytes (each user has their own now), which it could not be made over
$m->command(ChatMongo::doc(delete => "media", deletes => [
    ChatMongo::doc(q => ChatMongo::doc(), limit => 0) ]));
$m->command(ChatMongo::doc(createIndexes => "media", indexes => [
    ChatMongo::doc(key => ChatMongo::doc(hash => 1), name => "hash_1",
                   unique => JSON::PP::true()) ]));
--- request
GET /socket.io/?EIO=4&transport=polling
--- error_code: 200



=== TEST 2: the same bytes from two users: two ids, two times, one file
--- init
my $png = main::png(7, 5, $main::Run + 40);
my $hash = Digest::SHA::sha256_hex($png);
main::token($_) for qw(alice bob);

my ($s1, $a) = main::upload("alice", "image/png", $png);
die "alice: $s1" unless $s1 == 201;

# a second apart at least: createdAt is to the second
my $t1 = main::iso_to_epoch($a->{media}{createdAt});
Time::HiRes::sleep(0.1) while time == $t1;
my $before = time;

my ($s2, $b, $raw) = main::upload("bob", "image/png", $png);
die "bob: $s2 (a first upload of his is a 201)" unless $s2 == 201;
die "bob got alice's id" if $b->{media}{id} eq $a->{media}{id};
die "bob got alice's createdAt"
    if $b->{media}{createdAt} eq $a->{media}{createdAt};
die "bob's createdAt $b->{media}{createdAt} is not his upload's time"
    if main::iso_to_epoch($b->{media}{createdAt}) < $before;
for my $leak ($a->{media}{id}, $a->{media}{createdAt}) {
    die "bob's answer names $leak" if index($raw->{content}, $leak) >= 0;
}

# each reads their own, the same bytes
for my $m ($a, $b) {
    my $r = main::get($m->{media}{url});
    die "download $m->{media}{id}: $r->{status}" unless $r->{status} == 200;
    die "download $m->{media}{id}: other bytes" unless $r->{content} eq $png;
}

# stored once, under its hash
my @f = main::stored_files();
die "stored files: @f" unless @f == 1 && $f[0] =~ m{/\Q$hash\E$};

# alice again: her own id again (200), bob's stays his
my ($s3, $c) = main::upload("alice", "image/png", $png);
die "alice again: $s3 $c->{media}{id}"
    unless $s3 == 200 && $c->{media}{id} eq $a->{media}{id}
    && $c->{media}{createdAt} eq $a->{media}{createdAt};
my ($s4, $d) = main::upload("bob", "image/png", $png);
die "bob again: $s4 $d->{media}{id}"
    unless $s4 == 200 && $d->{media}{id} eq $b->{media}{id};

@f = main::stored_files();
die "stored files after four uploads: @f" unless @f == 1;
main::as($block, "bob");
--- request
GET /api/users/profile
--- error_code: 200



=== TEST 3: a new user's identical avatar: their own media, the same file
--- init
my $png = main::png(6, 6, $main::Run + 41);
my ($s1, $a) = main::upload("alice", "image/png", $png);
die "alice: $s1" unless $s1 == 201;
my $r = main::http()->post(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/users/upload-avatar",
    { headers => { 'Content-Type' => 'image/png',
                   Authorization => "Bearer "
                                    . main::token("bob")->{accessToken} },
      content => $png });
die "avatar: $r->{status}" unless $r->{status} == 201;
my $j = JSON::PP::decode_json($r->{content});
die "bob's avatar is alice's media"
    if $j->{user}{avatar} eq $a->{media}{id}
    || index($r->{content}, $a->{media}{id}) >= 0;
my @f = main::stored_files();
die "stored files: " . scalar(@f) unless @f == 2;
main::as($block, "bob");
$block->set_value("response_body_like", qr/"avatar":"$j->{user}{avatar}"/);
--- request
GET /api/users/profile
--- error_code: 200



=== TEST 4: a PDF is an attachment, sandboxed, not sniffed
--- init
main::download_of($block, "application/pdf",
    "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n"
    . "<< /Root 1 0 R >>\n%%EOF\n% $main::Run\n");
main::attachment($block, "application/pdf", "pdf");
--- request
GET /
--- error_code: 200



=== TEST 5: text is an attachment with its charset
--- init
main::download_of($block, "text/plain",
    "Some notes $main::Run\n" . ("plain words\n" x 4));
main::attachment($block, "text/plain; charset=utf-8", "txt");
--- request
GET /
--- response_body_like: ^Some notes \d+\nplain words\n
--- error_code: 200



=== TEST 6: a document (a ZIP) is an attachment
--- init
my $zip;
IO::Compress::Zip::zip(\"a document $main::Run" => \$zip, Name => "a.txt")
    or die "zip";
main::download_of($block, "application/zip", $zip);
main::attachment($block, "application/zip", "zip");
--- request
GET /
--- error_code: 200



=== TEST 7: an image stays inline, sandboxed and not sniffed
--- init
main::download_of($block, "image/png", main::png(3, 3, $main::Run + 42));
--- request
GET /
--- response_headers
Content-Type: image/png
!Content-Disposition
Content-Security-Policy: sandbox
X-Content-Type-Options: nosniff
--- error_code: 200



=== TEST 8: API answers and Socket.IO polling stay no-store
--- init
my ($s, $j, $r) = main::upload("alice", "image/png",
                               main::png(2, 2, $main::Run + 43));
die "upload $s: cache-control " . ($r->{headers}{'cache-control'} // 'none')
    unless $s == 201 && ($r->{headers}{'cache-control'} // '') eq 'no-store';
--- request
GET /socket.io/?EIO=4&transport=polling
--- response_headers
Cache-Control: no-store
X-Content-Type-Options: nosniff
--- response_body_like: ^0\{"sid":
--- error_code: 200
