package ChatSIO;

# Runs a scenario of t/lib/sio-scenario.js (the unmodified socket.io-client
# from npm) with the users of ChatChats; its JSON answer as "key=value"
# pairs, keys sorted.

use strict;
use warnings;

use ChatChats;
use JSON::PP ();

sub run {
    my ($scenario, %extra) = @_;
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    my $port = delete $extra{port} || $ENV{TEST_NGINX_SERVER_PORT};
    local $ENV{CHAT_SIO_CLIENT} = "$root/.deps/sio-client";
    my $cfg = JSON::PP->new->canonical->encode({
        scenario => $scenario,
        url => "http://127.0.0.1:$port",
        tokens => { map { $_ => $ChatChats::Tok{$_}{accessToken} }
                    keys %ChatChats::Tok },
        ids => \%ChatChats::Id,
        %extra,
    });
    my $out = `node $root/t/lib/sio-scenario.js '$cfg'`;
    my $r = eval { JSON::PP::decode_json($out) } or return "bad output: $out";
    return join " ", map {
        "$_=" . (JSON::PP::is_bool($r->{$_}) ? ($r->{$_} ? "true" : "false")
                                             : $r->{$_})
    } sort keys %$r;
}

1;
