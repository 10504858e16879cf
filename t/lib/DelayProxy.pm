package DelayProxy;

# A TCP proxy that holds every chunk a client sends for a while before it
# passes it on: it makes a real server (FerretDB here) slow to answer,
# without touching the server or the code under test.  With lose =>
# MARKER it also loses one answer: the first chunk that holds MARKER
# reaches the server, and the connection closes before the server's
# answer comes back (the store kept the write; its client never knows).
# With cut => MARKER the first chunk that holds MARKER never reaches the
# server: the connection closes instead (the command is lost on the way);
# cut_file => PATH reads that MARKER from PATH, once the file is there.
# With hold => MARKER, hold_for => SECONDS the first chunk that holds
# MARKER reaches the server that much later (one slow command; the
# store's other connections go on).  With slow_file => PATH, slow_for =>
# SECONDS every command waits that much longer while PATH exists (slow
# from a moment the test chooses, after its setup went at full speed).

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

# start(target_port, delay_seconds, [lose | cut => marker])
#   -> (pid, listen_port)
sub start {
    my ($target, $delay, %opt) = @_;

    # the children share one flag: the answer is lost once
    my $flag = ($opt{lose} || $opt{cut} || $opt{cut_file} || $opt{hold})
               ? "/tmp/delayproxy-$$-" . time() . ".lost" : undef;

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
            relay($client, $target, $delay, $opt{lose}, $flag, $opt{cut},
                  $opt{cut_file}, $opt{hold}, $opt{hold_for},
                  $opt{slow_file}, $opt{slow_for});
            POSIX::_exit(0);
        }

        close $client;
    }
}

sub relay {
    my ($client, $target, $delay, $lose, $flag, $cut, $cut_file, $hold,
        $hold_for, $slow_file, $slow_for) = @_;

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
                Time::HiRes::sleep($slow_for)
                    if defined $slow_file && -e $slow_file;

                if (defined $cut_file && !defined $cut
                    && open(my $m, '<', $cut_file))
                {
                    $cut = <$m>;
                    chomp $cut if defined $cut;
                    $cut = undef if defined $cut && $cut eq "";
                }

                # the command goes nowhere, and neither does the connection
                return if defined $cut && index($buf, $cut) >= 0
                          && sysopen(my $f, $flag,
                                     POSIX::O_WRONLY | POSIX::O_CREAT
                                     | POSIX::O_EXCL);

                if (defined $hold && index($buf, $hold) >= 0
                    && sysopen(my $f, $flag,
                               POSIX::O_WRONLY | POSIX::O_CREAT
                               | POSIX::O_EXCL))
                {
                    close $f;
                    Time::HiRes::sleep($hold_for);
                }

                syswrite($server, $buf) or return;

                if (defined $lose && index($buf, $lose) >= 0
                    && sysopen(my $f, $flag,
                               POSIX::O_WRONLY | POSIX::O_CREAT
                               | POSIX::O_EXCL))
                {
                    # the server does it; its answer is never passed on
                    close $f;
                    Time::HiRes::sleep(0.5);
                    return;
                }

            } else {
                syswrite($client, $buf) or return;
            }
        }
    }
}

# A store made slow from a moment the test chooses: a proxy in front of
# FerretDB that holds every command $secs longer while the returned file
# exists; its port in TEST_NGINX_SLOW_MONGO_PORT (ChatChats::slow_http_config
# points a block's http{} at it).  Stopped, and the file gone, at exit.
#   slow_store($secs) -> the file to create and remove
my @Slow;
sub slow_store {
    my ($secs) = @_;
    my $file = "/tmp/slow-store-$$-" . scalar(@Slow);
    unlink $file;
    my ($pid, $port) = start($ENV{TEST_NGINX_MONGO_PORT}, 0,
                             slow_file => $file, slow_for => $secs);
    $ENV{TEST_NGINX_SLOW_MONGO_PORT} = $port;
    push @Slow, [$pid, $file, $$];
    return $file;
}

END {
    # the test's own exit status: a proxy TERMed before its handler was
    # set dies of the signal, and waitpid would make that the test's
    local $?;

    for (@Slow) {
        my ($pid, $file, $owner) = @$_;
        # not in a forked child of the test
        next unless $owner == $$;
        stop($pid);
        unlink $file;
    }
}

sub stop {
    my ($pid) = @_;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    unlink glob("/tmp/delayproxy-$$-*.lost");
}

1;
