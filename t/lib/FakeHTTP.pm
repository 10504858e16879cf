package FakeHTTP;

# A fake HTTP/1.1 server for tests that stands in for a third-party API
# (Twilio, push, media).  It answers every request with the reply last set
# by set_reply(), which may change between test blocks, and logs every
# request it got so that a test can check what the module sent.
#
#   my $fake = FakeHTTP->new;
#   $ENV{TEST_NGINX_FAKE_PORT} = $fake->port;
#   $fake->set_reply(201, '{"sid":"SM1"}', 'X-Thing' => 'yes');
#   $fake->set_reply(200, 'late', delay => 3);    # answers after 3 s
#   ... run the requests ...
#   for my $req ($fake->requests) {    # {method, path, query, headers, body}
#       is $req->{headers}{authorization}, ...;
#   }
#   my %form = FakeHTTP::parse_form($req->{body});
#   $fake->clear;
#   $fake->stop;                       # also when the object goes away
#
# Only core Perl: the server is forked from the test, one process per
# connection, and reads its reply from a file for every request.  It
# speaks keep-alive, Content-Length and chunked request bodies, and
# "Expect: 100-continue".  Its output goes to /dev/null so that the test
# harness's pipes are not held open, and it exits when the test is gone.

use strict;
use warnings;

use Fcntl qw(:flock);
use File::Path ();
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

my %Reasons = (
    100 => 'Continue', 200 => 'OK', 201 => 'Created', 202 => 'Accepted',
    204 => 'No Content', 301 => 'Moved Permanently', 302 => 'Found',
    400 => 'Bad Request', 401 => 'Unauthorized', 403 => 'Forbidden',
    404 => 'Not Found', 405 => 'Method Not Allowed', 408 => 'Request Timeout',
    413 => 'Payload Too Large', 429 => 'Too Many Requests',
    500 => 'Internal Server Error', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout',
);

# seconds a connection may stay idle between requests
my $IdleTimeout = 10;

sub _json { JSON::PP->new->ascii->canonical }

# new(status => 200, body => '', headers => {...}, delay => 0)
sub new {
    my ($class, %opts) = @_;

    # removed by stop() in this process only: File::Temp's own cleanup
    # would also run in every child the test harness forks and exits
    my $dir = File::Temp::tempdir('fakehttp-XXXXXX', TMPDIR => 1);

    my $self = bless {
        dir      => $dir,
        reply    => "$dir/reply.json",
        log      => "$dir/requests.log",
        owner    => $$,
    }, $class;

    $self->set_reply($opts{status} // 200, $opts{body} // '',
                     %{ $opts{headers} // {} },
                     (defined $opts{delay} ? (delay => $opts{delay}) : ()));
    $self->clear;

    # listen before the fork: the port takes connections on return
    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128,
        ReuseAddr => 1, Proto => 'tcp',
    ) or die "FakeHTTP: listen: $!";

    $self->{port} = $listen->sockport;

    my $pid = fork;
    die "FakeHTTP: fork: $!" unless defined $pid;

    if ($pid == 0) {
        $self->_serve($listen);
        POSIX::_exit(0);
    }

    close $listen;
    $self->{pid} = $pid;

    return $self;
}

sub port { $_[0]{port} }

# set_reply($status, $body, %headers, delay => seconds)
sub set_reply {
    my ($self, $status, $body, %headers) = @_;

    my $delay = delete $headers{delay} // 0;

    my $tmp = "$self->{reply}.$$.tmp";
    open my $fh, '>', $tmp or die "FakeHTTP: $tmp: $!";
    print $fh _json()->encode({
        status => $status + 0, body => $body // '', headers => \%headers,
        delay => $delay + 0,
    });
    close $fh or die "FakeHTTP: $tmp: $!";

    # a request never sees half a file
    rename $tmp, $self->{reply} or die "FakeHTTP: rename: $!";
}

# the requests received so far, oldest first
sub requests {
    my ($self) = @_;

    open my $fh, '<', $self->{log} or return ();
    flock $fh, LOCK_SH;

    my @reqs;
    while (my $line = <$fh>) {
        chomp $line;
        push @reqs, _json()->decode($line) if length $line;
    }

    close $fh;
    return @reqs;
}

sub clear {
    my ($self) = @_;

    open my $fh, '>>', $self->{log} or die "FakeHTTP: $self->{log}: $!";
    flock $fh, LOCK_EX;
    truncate $fh, 0;
    close $fh;
}

sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;
    return if $$ != $self->{owner};

    local $?;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    File::Path::remove_tree($self->{dir});
}

sub DESTROY {
    local ($?, $!, $@);
    $_[0]->stop;
}

# "a=1&b=%2B2" -> (a => 1, b => '+2'); the last of a repeated name wins
sub parse_form {
    my ($body) = @_;
    my %form;

    for my $pair (split /&/, $body // '') {
        my ($k, $v) = split /=/, $pair, 2;
        for ($k, $v) {
            $_ //= '';
            tr/+/ /;
            s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        }
        $form{$k} = $v;
    }

    return %form;
}

# --- the server, in the forked child ---

sub _serve {
    my ($self, $listen) = @_;

    # never hold the test harness's output pipes open
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';

    $SIG{CHLD} = 'IGNORE';
    $SIG{PIPE} = 'IGNORE';
    $SIG{TERM} = sub { POSIX::_exit(0) };

    my $parent = getppid;
    my $sel = IO::Select->new($listen);

    while (1) {
        # the test is gone: so is its server
        POSIX::_exit(0) if getppid != $parent;

        next unless $sel->can_read(0.5);

        my $client = $listen->accept or next;
        my $child = fork;

        if (defined $child && $child == 0) {
            close $listen;
            $SIG{TERM} = 'DEFAULT';
            eval { $self->_connection($client) };
            POSIX::_exit(0);
        }

        close $client;
    }
}

sub _connection {
    my ($self, $client) = @_;

    my $server = getppid;
    my $buf = '';

    binmode $client;

    while (1) {
        my $req = _read_request($client, \$buf, $server) or return;

        $self->_log_request($req);

        my $reply = $self->_reply;

        if ($reply->{delay}) {
            my $until = Time::HiRes::time() + $reply->{delay};

            while (Time::HiRes::time() < $until) {
                return if getppid != $server;
                Time::HiRes::sleep(0.05);
            }
        }

        my $close = ($req->{headers}{connection} // '') =~ /\bclose\b/i
                    || $req->{version} eq 'HTTP/1.0';

        my %h = %{ $reply->{headers} };
        my %lc = map { lc($_) => 1 } keys %h;

        $h{'Content-Type'} = 'application/json' unless $lc{'content-type'};
        $h{'Content-Length'} = length $reply->{body};
        $h{'Connection'} = 'close' if $close && !$lc{connection};
        $close ||= ($h{Connection} // $h{connection} // '') =~ /close/i;

        my $status = $reply->{status};
        my $out = "HTTP/1.1 $status " . ($Reasons{$status} // 'Unknown')
                  . "\r\n";
        $out .= "$_: $h{$_}\r\n" for sort keys %h;
        $out .= "\r\n";
        $out .= $reply->{body} unless $req->{method} eq 'HEAD';

        _write($client, $out) or return;

        return if $close;
    }
}

# reads one request from $client; $buf keeps what was read beyond it
sub _read_request {
    my ($client, $buf, $server) = @_;

    my $end;
    until (($end = index $$buf, "\r\n\r\n") >= 0) {
        return if length $$buf > 65536;
        _read($client, $buf, $server) or return;
    }

    my $head = substr $$buf, 0, $end + 4, '';
    my ($line, @lines) = split /\r\n/, $head;

    my ($method, $target, $version) = split / /, $line // '';
    return unless $version && $version =~ m{^HTTP/1\.[01]$};

    my %headers;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $headers{$k} = exists $headers{$k} ? "$headers{$k}, $v" : $v;
    }

    my ($path, $query) = split /\?/, $target, 2;

    if (($headers{expect} // '') =~ /^100-continue$/i) {
        _write($client, "HTTP/1.1 100 Continue\r\n\r\n") or return;
    }

    my $body = '';

    if (($headers{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my $e;
            until (($e = index $$buf, "\r\n") >= 0) {
                _read($client, $buf, $server) or return;
            }

            my $size = substr $$buf, 0, $e + 2, '';
            $size =~ s/[;\r\n].*//s;
            $size = hex $size;

            # the last chunk: trailers up to an empty line
            if ($size == 0) {
                until (($e = index $$buf, "\r\n") == 0
                       || ($e = index $$buf, "\r\n\r\n") >= 0)
                {
                    _read($client, $buf, $server) or return;
                }

                substr $$buf, 0, ($e == 0 ? 2 : $e + 4), '';
                last;
            }

            # the chunk and its CRLF
            while (length $$buf < $size + 2) {
                _read($client, $buf, $server) or return;
            }

            $body .= substr $$buf, 0, $size, '';
            substr $$buf, 0, 2, '';
        }

    } elsif (my $len = $headers{'content-length'}) {
        while (length $$buf < $len) {
            _read($client, $buf, $server) or return;
        }

        $body = substr $$buf, 0, $len, '';
    }

    return {
        method => $method, path => $path, query => $query // '',
        version => $version, headers => \%headers, body => $body,
    };
}

sub _read {
    my ($client, $buf, $server) = @_;

    my $sel = IO::Select->new($client);
    my $idle = 0;

    until ($sel->can_read(0.5)) {
        return 0 if getppid != $server;
        return 0 if ($idle += 0.5) >= $IdleTimeout;
    }

    my $n = sysread $client, $$buf, 65536, length $$buf;
    return $n ? 1 : 0;
}

sub _write {
    my ($client, $data) = @_;

    while (length $data) {
        my $n = syswrite $client, $data;
        return 0 unless $n;
        substr $data, 0, $n, '';
    }

    return 1;
}

sub _reply {
    my ($self) = @_;

    my $json = eval {
        open my $fh, '<', $self->{reply} or die;
        local $/;
        my $text = <$fh>;
        close $fh;
        _json()->decode($text);
    };

    return $json // { status => 500, body => 'no reply set', headers => {},
                      delay => 0 };
}

sub _log_request {
    my ($self, $req) = @_;

    my %entry = map { $_ => $req->{$_} } qw(method path query headers body);
    # when it came, by this server's clock: a test process stalled on a
    # loaded machine does not see the gaps between requests it polls late
    $entry{at} = Time::HiRes::time();
    my $line = _json()->encode(\%entry) . "\n";

    open my $fh, '>>', $self->{log} or return;
    flock $fh, LOCK_EX;
    syswrite $fh, $line;
    close $fh;
}

1;
