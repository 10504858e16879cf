# The dev stack's own configuration (nginx.conf.d, as tools/run starts it),
# started as root: the master as root, the workers as NGINX's default user.
# Only the addresses change, through the two files the configuration
# includes for them (dev-backends.conf, dev-listen.conf).  A user signs in
# by the code the log SMS provider writes to the error log, uploads an
# image, downloads it, sets an avatar; the stack started again on the
# media root of the run before still uploads; a media subdirectory left by
# a run as another user is named in an alert on reload and stops a start.
# As a user: a fresh prefix uploads; the prefix root ran is refused, named.

use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(basename dirname);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);
use MIME::Base64 qw(decode_base64);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

plan skip_all => "t/052 starts NGINX as root (the master as root, the "
    . "workers as its default user): run it as root" if $> != 0;

for my $v (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_MONGO_PORT)) {
    plan skip_all => "$v is not set: run it with tools/test" unless $ENV{$v};
}

my $root = $ENV{TEST_NGINX_ROOT} || getcwd();
my $binary = $ENV{TEST_NGINX_BINARY} || "/usr/sbin/nginx";
my $modules = $ENV{TEST_NGINX_LOAD_MODULES};

my $worker = getpwnam("nobody");
plan skip_all => "no user \"nobody\" (NGINX's default worker user)"
    unless defined $worker;

my $port = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                 LocalPort => 0)->sockport;

# a prefix like tools/run's build directory in a fresh clone (0755), with
# the configuration as shipped, copied as tools/run copies it
sub make_prefix {
    my $owner = shift;
    my $prefix = tempdir("ngx-chat-052.XXXXXX", TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $prefix or die "chmod $prefix: $!";

    mkdir "$prefix/$_" or die "mkdir $_: $!" for qw(conf run logs);
    opendir my $dh, "$root/nginx.conf.d" or die "nginx.conf.d: $!";
    for my $f (grep { -f "$root/nginx.conf.d/$_" } readdir $dh) {
        copy("$root/nginx.conf.d/$f", "$prefix/conf/$f")
            or die "copy $f: $!";
    }
    closedir $dh;

    die "the shipped configuration names no dev-backends.conf"
        unless -f "$prefix/conf/dev-backends.conf"
               && -f "$prefix/conf/dev-listen.conf";
    die "the shipped configuration carries secrets"
        if -f "$prefix/conf/dev-secrets.conf";

    # the prefix's own secrets, as tools/run makes a checkout's
    system("$root/tools/dev-secrets", "$prefix/conf") == 0
        or die "tools/dev-secrets";
    # made 0600 for whoever made them; a run as another user on this
    # prefix is about the media root, not about reading them
    chmod 0644, "$prefix/conf/dev-secrets.conf" or die "chmod: $!";

    write_file("$prefix/conf/dev-backends.conf",
        "chat_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n"
        . "chat_mongo_uri "
        . "\"mongodb://127.0.0.1:$ENV{TEST_NGINX_MONGO_PORT}/\";\n");
    write_file("$prefix/conf/dev-listen.conf", "listen 127.0.0.1:$port;\n");

    # the binary and the module copied in: a user must reach them, which
    # a checkout in a private directory (a CI clone, 0700) does not let
    mkdir "$prefix/sbin" or die "mkdir sbin: $!";
    copy($binary, "$prefix/sbin/nginx") or die "copy $binary: $!";
    chmod 0755, "$prefix/sbin/nginx" or die "chmod nginx: $!";

    if ($modules) {
        mkdir "$prefix/modules" or die "mkdir modules: $!";
        copy($modules, "$prefix/modules/" . basename($modules))
            or die "copy $modules: $!";
        chmod 0644, "$prefix/modules/" . basename($modules)
            or die "chmod module: $!";

    } else {
        # a static build has the module inside: its load_module line goes
        my $conf = read_file("$prefix/conf/nginx.conf");
        $conf =~ s/^load_module .*\n//m;
        write_file("$prefix/conf/nginx.conf", $conf);
    }

    if (defined $owner) {
        system("chown", "-R", "$owner:$owner", $prefix) == 0
            or die "chown $prefix";
    }

    return $prefix;
}

my ($prefix, $log, $pid);   # $log: what tools/run shows on its terminal

# one client address of its own: the OTP limits per address in the shared
# Redis are not those of the other tests' configurations
my $client = sprintf "127.%d.%d.%d", 1 + $$ % 200, int(rand 250) + 1,
    int(rand 250) + 1;
my $http = HTTP::Tiny->new(local_address => $client, timeout => 20);
my $base = "http://127.0.0.1:$port";

sub read_file {
    my $f = shift;
    open my $fh, "<", $f or die "$f: $!";
    local $/;
    return <$fh>;
}

sub write_file {
    my ($f, $s) = @_;
    open my $fh, ">", $f or die "$f: $!";
    print $fh $s;
    close $fh or die "$f: $!";
}

sub start {
    my $uid = shift;    # a user's uid, else as root

    # the terminal is the user's
    write_file($log, "");
    chown $uid, $uid, $log or die "chown $log: $!" if defined $uid;

    $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDOUT, ">>", $log or die "$log: $!";
        open STDERR, ">>", $log or die "$log: $!";

        if (defined $uid) {
            $) = "$uid $uid";
            POSIX::setgid($uid) or die "setgid: $!";
            POSIX::setuid($uid) or die "setuid: $!";
        }

        exec "$prefix/sbin/nginx", "-p", "$prefix/", "-c", "conf/nginx.conf";
        die "exec $prefix/sbin/nginx: $!";
    }

    for (1 .. 100) {
        my $r = $http->get("$base/healthz");
        return 1 if $r->{status} == 200;
        return 0 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.1;
    }

    return 0;
}

sub stop {
    return unless $pid;
    kill "QUIT", $pid;
    waitpid $pid, 0;
    undef $pid;
}

END { stop() }

sub api {
    my ($method, $path, $tok, $body, $type) = @_;
    my %h = (headers => {});
    $h{headers}{Authorization} = "Bearer $tok" if $tok;

    if (defined $body) {
        $h{headers}{"Content-Type"} = $type // "application/json";
        $h{content} = ref $body ? encode_json($body) : $body;
    }

    my $r = $http->request($method, "$base$path", \%h);
    my $json = eval { decode_json($r->{content}) };
    return ($r->{status}, $json, $r->{content});
}

# a PNG of 1x1 whose trailing bytes make it new to the shared store; not
# stored under ee/, the subdirectory of another user below
sub png {
    for (;;) {
        my $png = decode_base64("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
                                . "AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
                                . "rkJggg==")
            . join("", map { chr int rand 256 } 1 .. 64);
        return $png if substr(sha256_hex($png), 0, 2) ne "ee";
    }
}

sub sign_in {
    my $phone = sprintf "+1628557%04d", ($$ + int rand 10000) % 10000;

    my ($st, $j, $raw) = api(POST => "/api/auth/send-otp", undef,
                             { phone => $phone });
    is($st, 200, "send-otp") or diag $raw;

    # the log provider writes the code to the error log, as an operator
    # running tools/run reads it on the terminal
    my $code;
    for (1 .. 50) {
        ($code) = read_file($log) =~ /chat sms: to \Q$phone\E: \D*(\d{6})/;
        last if $code;
        sleep 0.1;
    }
    ok($code, "the code in the error log") or return "";

    ($st, $j, $raw) = api(POST => "/api/auth/verify-otp", undef,
                          { phone => $phone, code => $code,
                            device => "dev-stack" });
    is($st, 200, "verify-otp") or diag $raw;

    return $j->{accessToken};
}

sub upload_and_download {
    my ($tok, $what) = @_;
    my $bytes = png();

    my ($st, $j, $raw) = api(POST => "/api/media", $tok, $bytes,
                             "image/png");
    is($st, 201, "$what: POST /api/media") or diag $raw;

    my $url = $j->{media}{url} // "";
    like($url, qr{^/media/[0-9a-f]{24}\?exp=\d+&sig=[0-9a-f]{64}$},
         "$what: a signed URL");

    my $r = $http->get("$base$url");
    is($r->{status}, 200, "$what: the download");
    ok($r->{content} eq $bytes, "$what: the same bytes");
    is($r->{headers}{"content-type"}, "image/png", "$what: its type");

    return $j->{media}{id};
}

sub no_errors {
    my $what = shift;
    my @bad = grep { /\[(error|alert|emerg|crit)\]/ } split /\n/,
        read_file($log);
    ok(!@bad, "$what: no [error], [alert], [emerg] in the error log")
        or diag join "\n", @bad;
}

# 1. a fresh prefix: the master makes the media root, for the workers
$prefix = make_prefix();
$log = "$prefix/terminal.log";
ok(start(), "the shipped configuration starts as root")
    or diag read_file($log);

my $media = "$prefix/media";
my @st = stat $media;
ok(-d _, "the media root is made at start");
is($st[4], $worker, "the media root belongs to the workers' user");

my $tok = sign_in();
my $id = upload_and_download($tok, "first run");

my ($st, $j, $raw) = api(POST => "/api/users/upload-avatar", $tok, png(),
                         "image/png");
is($st, 201, "upload-avatar") or diag $raw;
is($j->{user}{avatar}, $j->{media}{id}, "the avatar is the new media");

my $avatar = $j->{media}{id};
($st, $j, $raw) = api(GET => "/api/users/profile", $tok);
like($raw, qr/"avatar":"\Q$avatar\E"/, "my profile shows the avatar");

opendir my $dh, $media or die "$media: $!";
my @sub = grep { /^[0-9a-f]{2}$/ } readdir $dh;
closedir $dh;
ok(@sub >= 1, "the uploads made subdirectories");
is(scalar(grep { (stat "$media/$_")[4] != $worker } @sub), 0,
   "the workers made them as their user");

no_errors("first run");
stop();

# 2. the same prefix again: the media root and its subdirectories exist
ok(start(), "started again on the media root of the run before")
    or diag read_file($log);
upload_and_download($tok, "second run");
no_errors("second run");

# a subdirectory of another user appears: a reload says so, and goes on
mkdir "$media/ee";
chown 4242, 4242, "$media/ee" or die "chown: $!";
kill "HUP", $pid;
my $said;
for (1 .. 50) {
    $said = read_file($log) =~ /\[alert\].*\Q$media\/ee\E/;
    last if $said;
    sleep 0.1;
}
ok($said, "a reload names the subdirectory in an [alert]");
sleep 0.5;
upload_and_download($tok, "after the reload");
stop();

# 3. a subdirectory left by a run as another user: refused at start, named
ok(!start(), "a media subdirectory of another user stops the start");
like(read_file($log), qr/\[emerg\].*\Q$media\/ee\E/,
     "the message names the subdirectory");
stop();
rmdir "$media/ee" or die "rmdir: $!";

# 4. as a user: a fresh prefix of that user's, the workers that user too
my $user_prefix = make_prefix($worker);
{
    my ($root_prefix, $root_log) = ($prefix, $log);
    ($prefix, $log) = ($user_prefix, "$user_prefix/terminal.log");
    ok(start($worker), "the shipped configuration starts as a user")
        or diag read_file($log);
    my @st = stat "$prefix/media";
    is($st[4], $worker, "as a user: the media root is that user's");
    upload_and_download(sign_in(), "as a user");
    no_errors("as a user");
    stop();
    ($prefix, $log) = ($root_prefix, $root_log);
}

# 5. as another user on the prefix where root ran (its media root given to
# root's workers): refused at start, the media root named
ok(!start(4243), "a media root this user cannot write stops the start");
like(read_file($log), qr/\[emerg\].*"\Q$media\E" is not writable/,
     "the message names the media root");
stop();

done_testing();
