package ChatRT;

# Realtime clients for the tests: a signed-in user's WebSocket on the
# chat endpoint, events sent as {"event", "data", "id"}, and the events
# that come back, decoded.

use strict;
use warnings;

use ChatWS;
use ChatChats;
use JSON::PP ();

my $JSON = JSON::PP->new->canonical;

sub connect {
    my ($who, %opt) = @_;
    my $path = $opt{path} // "/ws";
    $path .= "?token=$ChatChats::Tok{$who}{accessToken}" unless $opt{anonymous};
    my ($s, $status) = ChatWS::open_ws($path);
    die "websocket for $who: $status" unless $status == 101;
    if (!$opt{anonymous} && !$opt{no_wait}) {
        my $e = wait_for($s, "authenticated");
        die "$who not authenticated" unless $e;
    }
    return $s;
}

sub send_event {
    my ($s, $event, $data, $id) = @_;
    my $env = { event => $event, data => $data };
    $env->{id} = $id if defined $id;
    ChatWS::text($s, $JSON->encode($env));
}

# the next event (decoded), or undef after $timeout seconds
sub next_event {
    my ($s, $timeout) = @_;
    for (;;) {
        my $f = ChatWS::read_frame($s, $timeout // 3);
        return undef unless $f;
        next if $f->{opcode} == 9 || $f->{opcode} == 10;
        return { event => "close", code => unpack("n", $f->{payload} || "\0\0") }
            if $f->{opcode} == 8;
        return $JSON->decode($f->{payload});
    }
}

# skips events until one named $name (or ack/error with id $id)
sub wait_for {
    my ($s, $name, $timeout, $id) = @_;
    for (;;) {
        my $e = next_event($s, $timeout);
        return undef unless $e;
        return $e if $e->{event} eq $name
                     && (!defined $id || (defined $e->{id} && $e->{id} eq $id));
        return $e if defined $id && defined $e->{id} && $e->{id} eq $id;
    }
}

# every event until $timeout seconds of quiet
sub drain {
    my ($s, $timeout) = @_;
    my @e;
    while (my $e = next_event($s, $timeout // 0.5)) {
        push @e, $e;
    }
    return @e;
}

sub encode { $JSON->encode(@_) }

# the worker that authenticated $who's latest socket (each logs it)
sub worker_of {
    my ($who) = @_;
    open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log" or die;
    my $pid;
    while (<$log>) {
        $pid = $1 if /\[info\] (\d+)#\d+: .*chat ws: authenticated as \Q$ChatChats::Id{$who}\E/;
    }
    return $pid;
}

1;
