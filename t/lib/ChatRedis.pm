package ChatRedis;

# A Redis of a test's own, which the test may stop and start again.

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die "free_port: $!";
    return $s->sockport;
}

sub new {
    my ($class, $port) = @_;
    return bless { port => $port || free_port() }, $class;
}

sub port { $_[0]{port} }

sub start {
    my ($self) = @_;

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec 'redis-server', '--port', $self->{port}, '--bind',
               '127.0.0.1', '--save', '', '--appendonly', 'no' };
        POSIX::_exit(127);
    }

    $self->{pid} = $pid;

    for (1 .. 100) {
        return $self if IO::Socket::INET->new("127.0.0.1:$self->{port}");
        sleep 0.05;
    }

    die "redis-server did not start on port $self->{port}";
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    local $?;    # an END block must not pass the child's status on
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop }

1;
