package DelayProxy;

# A TCP proxy that holds every chunk a client sends for a while before it
# passes it on: it makes a real server (FerretDB here) slow to answer,
# without touching the server or the code under test.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

# start(target_port, delay_seconds) -> (pid, listen_port)
sub start {
    my ($target, $delay) = @_;

    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128,
        ReuseAddr => 1,
    ) or die "DelayProxy: listen: $!";

    my $port = $listen->sockport;

    my $pid = fork;
    die "DelayProxy: fork: $!" unless defined $pid;

    if ($pid) {
        close $listen;
        return ($pid, $port);
    }

    # never hold the test harness's output pipes open
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';

    $SIG{CHLD} = 'IGNORE';
    $SIG{TERM} = sub { POSIX::_exit(0) };

    while (1) {
        my $client = $listen->accept or next;
        my $child = fork;

        if (defined $child && $child == 0) {
            close $listen;
            relay($client, $target, $delay);
            POSIX::_exit(0);
        }

        close $client;
    }
}

sub relay {
    my ($client, $target, $delay) = @_;

    my $server = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$target")
        or return;

    my $sel = IO::Select->new($client, $server);
    my $parent = getppid;

    while (1) {
        # the proxy is gone (the test ended): so is this connection
        return if getppid != $parent;

        for my $fh ($sel->can_read(1)) {
            my $n = sysread($fh, my $buf, 65536);
            return if !$n;

            if ($fh == $client) {
                Time::HiRes::sleep($delay);
                syswrite($server, $buf) or return;

            } else {
                syswrite($client, $buf) or return;
            }
        }
    }
}

sub stop {
    my ($pid) = @_;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}

1;
