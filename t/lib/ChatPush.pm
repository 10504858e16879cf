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
use Time::HiRes ();

our ($Token, $Fcm, $Dir, $Account);

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

    ChatChats::init($prefix,
        "chat_push_fcm_service_account $Dir/account.json;\n"
        . "    chat_push_fcm_base_url http://127.0.0.1:" . $Fcm->port . ";"
        . ($extra // ""));
}

# the FCM requests' bodies (with _auth and _path), once $want came and no
# new one for a while; the log is cleared
sub pushes {
    my ($want) = @_;
    my @r;
    for (1 .. 40) {
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
