package ChatOther;

# Another NGINX instance beside the one Test::Nginx runs: the same
# configuration (the block's, as written to the server root), one
# process, listening on a port of its own and logging into a directory of
# its own.  The caller stops it with stop().

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes ();

# -> (port, pid, dir); $edit, if given, changes the configuration (in $_)
# first: an instance of another build's settings
sub start {
    my ($edit) = @_;
    my $conf = do {
        local $/;
        open my $fh, "<", "$Test::Nginx::Util::ServRoot/conf/nginx.conf"
            or die "nginx.conf: $!";
        <$fh>;
    };
    my $dir = tempdir(CLEANUP => 1);
    mkdir "$dir/logs";
    my $port = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                     LocalPort => 0)->sockport;
    $conf =~ s{\Q$Test::Nginx::Util::ServRoot\E/logs}{$dir/logs}g;
    $conf =~ s{listen\s+\d+;}{listen 127.0.0.1:$port;}g;
    $conf =~ s{listen 127\.0\.0\.1:\d+ reuseport;}{};
    $conf =~ s{master_process on;}{master_process off;};
    if ($edit) {
        local $_ = $conf;
        $edit->();
        $conf = $_;
    }
    open my $out, ">", "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
    print $out $conf;
    close $out;
    my $bin = $ENV{TEST_NGINX_BINARY} || "nginx";
    my $err = `$bin -p $dir/ -c $dir/nginx.conf 2>&1`;
    die "another nginx did not start: $err" if $?;
    my $pid;
    for (1 .. 50) {
        Time::HiRes::sleep(0.1);
        next unless open my $pf, "<", "$dir/logs/nginx.pid";
        $pid = <$pf>;
        last if defined $pid && $pid =~ /^\d+/;
    }
    die "another nginx wrote no pid" unless $pid;
    chomp $pid;
    return ($port, $pid, $dir);
}

# a graceful stop, waited for (a sanitizer's report is written at exit)
sub stop {
    my ($pid) = @_;
    return unless $pid && kill 0, $pid;
    kill "QUIT", $pid;
    for (1 .. 100) {
        return unless kill 0, $pid;
        Time::HiRes::sleep(0.05);
    }
    kill "KILL", $pid;
}

1;
