package ChatSIO;

# Runs a scenario of t/lib/sio-scenario.js (the unmodified socket.io-client
# from npm), or another script of t/lib (script => "name.js"), with the
# users of ChatChats; its JSON answer as "key=value" pairs, keys sorted.

use strict;
use warnings;

use ChatChats;
use JSON::PP ();

sub run {
    my ($scenario, %extra) = @_;
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    my $port = delete $extra{port} || $ENV{TEST_NGINX_SERVER_PORT};
    my $script = delete $extra{script} || "sio-scenario.js";
    local $ENV{CHAT_SIO_CLIENT} = "$root/.deps/sio-client";
    my $cfg = JSON::PP->new->canonical->encode({
        scenario => $scenario,
        url => "http://127.0.0.1:$port",
        tokens => { map { $_ => $ChatChats::Tok{$_}{accessToken} }
                    keys %ChatChats::Tok },
        ids => \%ChatChats::Id,
        %extra,
    });
    my $out = `node $root/t/lib/$script '$cfg'`;
    my $r = eval { JSON::PP::decode_json($out) } or return "bad output: $out";
    return join " ", map {
        "$_=" . (JSON::PP::is_bool($r->{$_}) ? ($r->{$_} ? "true" : "false")
                                             : $r->{$_})
    } sort keys %$r;
}

# By hand, the order socket.io-client may give: the handshake, the
# WebSocket of the upgrade opened (it reads the session before any
# CONNECT), then a CONNECT with token posted over polling and polled until
# its answer matches $until.  -> {ws, status, posted, polled}
sub upgrade_before_connect {
    my ($token, $until) = @_;
    require HTTP::Tiny;
    require ChatWS;
    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
        . "/socket.io/?EIO=4&transport=polling";
    my $http = HTTP::Tiny->new(timeout => 10);
    my ($sid) = $http->get($base)->{content} =~ /^0\{"sid":"([^"]+)"/;
    my ($ws, $status) = ChatWS::open_ws(
        "/socket.io/?EIO=4&transport=websocket&sid=$sid");
    my $posted = $http->post("$base&sid=$sid",
                             { content => qq(40{"token":"$token"}) });
    my $polled = "";
    for (1 .. 10) {
        $polled .= $http->get("$base&sid=$sid")->{content} . "\x1e";
        last if $polled =~ $until;
    }
    return { ws => $ws, status => $status, posted => $posted->{content},
             polled => $polled };
}

# A Socket.IO client by hand over the websocket transport, for tests in
# Perl: the Engine.IO open packet read, a CONNECT with the token sent;
# the server's pings are answered as events are read.
sub open_ws {
    my ($token, %opt) = @_;
    require ChatWS;
    my ($s, $status) = ChatWS::open_ws(($opt{path} // "/socket.io/")
                                       . "?EIO=4&transport=websocket");
    die "socket.io: $status" unless $status == 101;
    my $open = ChatWS::read_frame($s, 5);
    die "socket.io: no open packet"
        unless $open && $open->{payload} =~ /^0\{/;
    ChatWS::text($s, "40" . JSON::PP::encode_json({ token => $token }))
        if defined $token;
    return $s;
}

# an EVENT, with an ack id if one is given
sub emit {
    my ($s, $event, $data, $id) = @_;
    ChatWS::text($s, "42" . ($id // "")
                     . JSON::PP->new->canonical->encode([$event, $data]));
}

# the next packet as {event, data, id?} ("connect", "connect_error",
# "ack", "disconnect", "close" for the packets that are not EVENTs), or
# undef after $timeout seconds
sub next_event {
    my ($s, $timeout) = @_;
    for (;;) {
        my $f = ChatWS::read_frame($s, $timeout // 3);
        return undef unless $f;
        return { event => "close",
                 code => unpack("n", $f->{payload} || "\0\0") }
            if $f->{opcode} == 8;
        my $p = $f->{payload};
        if ($p eq "2") {
            ChatWS::text($s, "3");
            next;
        }
        return { event => "close" } if $p eq "1";
        return { event => "connect", data => JSON::PP::decode_json($1) }
            if $p =~ /^40(\{.*)$/s;
        return { event => "connect_error", data => JSON::PP::decode_json($1) }
            if $p =~ /^44(\{.*)$/s;
        return { event => "disconnect" } if $p =~ /^41/;
        if ($p =~ /^42(\d*)(\[.*)$/s) {
            my ($id, $a) = ($1, JSON::PP::decode_json($2));
            return { event => $a->[0], data => $a->[1],
                     (length $id ? (id => $id) : ()) };
        }
        if ($p =~ /^43(\d+)(\[.*)$/s) {
            my ($id, $a) = ($1, JSON::PP::decode_json($2));
            return { event => "ack", id => $id, data => $a->[0] };
        }
    }
}

1;

