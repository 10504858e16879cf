package ChatPush;

# The push suites' fakes: a token endpoint and FCM (FakeHTTP each), a
# service account with a fresh RSA key pointing at them, and what the
# fake FCM got, decoded.
#
#   ChatPush::start("668");      # before ChatChats is used; signs nobody in
#   my @p = ChatPush::pushes(2); # the messages sent, once 2 came (or 4 s)
#   ChatPush::whom(@p);          # "bob,carol": whose tok-<name> they went to

use strict;
use warnings;

use ChatChats;
use FakeHTTP;
use File::Temp ();
use JSON::PP qw(encode_json decode_json);
use POSIX ();
use Time::HiRes ();

our ($Token, $Fcm, $Dir, $Account, $ApnsPort, $ApnsPid, $ApnsOwner);

# the fake APNs (t/lib/fake-apns.py) over TLS with a certificate made
# here, and the provider's EC key (P-256, PKCS#8 as Apple gives it)
sub apns_start {
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    my $q = "2>/dev/null";
    system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $Dir/tls.key "
           . "-out $Dir/tls.crt -days 2 -subj /CN=localhost "
           . "-addext subjectAltName=IP:127.0.0.1,DNS:localhost $q") == 0
        or die "openssl req";
    system("openssl ecparam -name prime256v1 -genkey -noout "
           . "-out $Dir/ec.pem $q") == 0 or die "openssl ecparam";
    system("openssl pkcs8 -topk8 -nocrypt -in $Dir/ec.pem "
           . "-out $Dir/apns.p8 $q") == 0 or die "openssl pkcs8";
    system("openssl ec -in $Dir/ec.pem -pubout -out $Dir/ecpub.pem $q") == 0
        or die "openssl ec";
    apns_reply(200, "");
    open my $l, '>', "$Dir/apns.log" or die;
    close $l;

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec "$root/.deps/apns/bin/python", "$root/t/lib/fake-apns.py",
             "$Dir/tls.crt", "$Dir/tls.key", "$Dir/apns.log",
             "$Dir/apns.reply", "$Dir/apns.port"
            or POSIX::_exit(1);
    }
    $ApnsPid = $pid;
    $ApnsOwner = $$;
    for (1 .. 100) {
        last if -s "$Dir/apns.port";
        Time::HiRes::sleep(0.05);
    }
    open my $p, '<', "$Dir/apns.port" or die "the fake APNs did not start";
    $ApnsPort = <$p>;
    close $p;
}

sub apns_reply {
    my ($status, $body, %headers) = @_;
    open my $f, '>', "$Dir/apns.reply.tmp" or die;
    print $f encode_json({ status => $status, body => $body,
                           headers => \%headers });
    close $f;
    rename "$Dir/apns.reply.tmp", "$Dir/apns.reply" or die;
}

# the fake APNs forgets what it got
sub apns_clear {
    open my $l, '>', "$Dir/apns.log" or die;
    close $l;
}

# the requests the fake APNs got, then forgotten: until $want came (at
# most 4 s), or what came in 1.5 s (a push is sent within milliseconds
# of its commit)
sub apns_requests {
    my ($want) = @_;
    my @r;
    for (1 .. (defined $want ? 40 : 15)) {
        @r = _apns_log();
        last if defined $want && @r >= $want;
        Time::HiRes::sleep(0.1);
    }
    Time::HiRes::sleep(0.3);
    @r = _apns_log();
    open my $l, '>', "$Dir/apns.log" or die;
    close $l;
    return @r;
}

sub _apns_log {
    open my $f, '<', "$Dir/apns.log" or return ();
    my @r = map { decode_json($_) } grep { /\S/ } <$f>;
    close $f;
    return @r;
}

END {
    if ($ApnsPid && $$ == $ApnsOwner) {
        local $?;
        kill 'TERM', $ApnsPid;
        waitpid $ApnsPid, 0;
    }
}

# $extra: more http{} directives
sub start {
    my ($prefix, $extra) = @_;

    $Token = FakeHTTP->new;
    $Token->set_reply(200, '{"access_token":"ya29.first","expires_in":3600,'
                           . '"token_type":"Bearer"}');
    $Fcm = FakeHTTP->new;
    $Fcm->set_reply(200, '{"name":"projects/proj-test/messages/1"}');

    $Dir = File::Temp::tempdir("push-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    system("openssl genrsa -out $Dir/key.pem 2048 2>/dev/null") == 0
        or die "openssl genrsa";
    system("openssl rsa -in $Dir/key.pem -pubout -out $Dir/pub.pem "
           . "2>/dev/null") == 0 or die "openssl rsa";
    open my $k, '<', "$Dir/key.pem" or die "$Dir/key.pem: $!";
    my $pem = do { local $/; <$k> };
    close $k;

    $Account = {
        type => "service_account", project_id => "proj-test",
        private_key_id => "k1", private_key => $pem,
        client_email => 'push@proj-test.iam.gserviceaccount.com',
        token_uri => "http://127.0.0.1:" . $Token->port . "/token",
    };
    open my $f, '>', "$Dir/account.json" or die "$Dir/account.json: $!";
    print $f encode_json($Account);
    close $f;

    apns_start();

    ChatChats::init($prefix,
        "chat_push_fcm_service_account $Dir/account.json;\n"
        . "    chat_push_apns_key $Dir/apns.p8 KEYID12345 TEAMID1234;\n"
        . "    chat_push_apns_base_url https://127.0.0.1:$ApnsPort;\n"
        . "    chat_push_apns_ca_file $Dir/tls.crt;\n"
        . "    chat_push_fcm_base_url http://127.0.0.1:" . $Fcm->port . ";"
        . ($extra // ""));
}

# the FCM requests' bodies (with _auth and _path): until $want came (at
# most 4 s), or what came in 1.5 s; the log is cleared
sub pushes {
    my ($want) = @_;
    my @r;
    for (1 .. (defined $want ? 40 : 15)) {
        @r = $Fcm->requests;
        last if defined $want && @r >= $want;
        Time::HiRes::sleep(0.1);
    }
    Time::HiRes::sleep(0.3);
    @r = $Fcm->requests;
    $Fcm->clear;
    return map {
        my $b = decode_json($_->{body});
        $b->{_auth} = $_->{headers}{authorization};
        $b->{_path} = $_->{path};
        $b;
    } @r;
}

sub whom {
    my %tok = map { ("tok-$_" => $_) } qw(alice bob carol dave erin);
    return join(",", sort map { $tok{ $_->{message}{token} }
                                // $_->{message}{token} } @_) || "nobody";
}

1;
