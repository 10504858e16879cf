# Autobahn|Testsuite's fuzzing cases against the echo location
# (chat_ws_echo): framing, pings, reserved bits and opcodes, fragmentation,
# UTF-8, close handling, limits and performance (9.x), automatic
# fragmentation, and permessage-deflate (12.x, 13.x).  Every case must end
# OK, NON-STRICT or INFORMATIONAL, both for its messages (behavior) and its
# closing handshake (behaviorClose).
#
# The cases run in --- init through tools/autobahn/fuzzingclient.py, in the
# virtualenv that tools/bootstrap makes; the report (index.json and HTML)
# goes to t/autobahn-report/ (-asan-run/ in the ASan pass).  The block's own request only fetches the
# verdict.  CHAT_AUTOBAHN_EXCLUDE (set by tools/test for the reload and
# sanitizer runs) leaves out the slowest cases.

use Test::Nginx::Socket;
use ChatTest;
use ChatWS;
use JSON::PP ();

our $Got;

sub autobahn {
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    my $python = "$root/.deps/autobahn/bin/python";
    # a pass of its own server root has a report of its own (the plain
    # and ASan passes run at once in .ci/run)
    my ($pass) = ($ENV{TEST_NGINX_SERVROOT} // "") =~ m{/servroot([\w-]*)/?$};
    my $out = "$root/t/autobahn-report" . ($pass // "");

    return "no $python: run tools/bootstrap" unless -x $python;

    system("rm", "-rf", $out);
    my $rc = system($python, "$root/tools/autobahn/fuzzingclient.py",
                    "--spec", "$root/tools/autobahn/fuzzingclient.json",
                    "--url", "ws://127.0.0.1:" . ChatWS::port() . "/autobahn",
                    "--outdir", $out);
    return "the fuzzing client failed ($rc)" if $rc != 0;

    open my $fh, "<", "$out/index.json" or return "no index.json: $!";
    my $index = JSON::PP->new->decode(do { local $/; <$fh> });

    my %good = map { $_ => 1 } "OK", "NON-STRICT", "INFORMATIONAL";
    my ($n, @failed) = (0);

    for my $agent (sort keys %$index) {
        my $cases = $index->{$agent};

        for my $id (sort { _case_cmp($a, $b) } keys %$cases) {
            my $c = $cases->{$id};
            $n++;
            next if $good{$c->{behavior}} && $good{$c->{behaviorClose}};
            push @failed, "$id $c->{behavior}/$c->{behaviorClose}";
        }
    }

    Test::More::diag("autobahn: $n cases, " . scalar(@failed) . " failed");

    return "no case ran" unless $n;
    return @failed ? "failed: " . join(", ", @failed) : "failed: none";
}

# 1.2.10 after 1.2.9
sub _case_cmp {
    my @a = split /\./, shift;
    my @b = split /\./, shift;
    while (@a && @b) {
        my $d = shift(@a) <=> shift(@b);
        return $d if $d;
    }
    return @a <=> @b;
}

# one block: a reload between blocks (TEST_NGINX_USE_HUP) would add nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: every case OK, NON-STRICT or INFORMATIONAL
--- config
    location /autobahn {
        chat_ws_echo;
        chat_ws_max_message_size 20m;
        chat_ws_max_queue 64m;
        chat_ws_deflate on;
    }
    location = /t { return 200 "t"; }
--- init
$main::Got = main::autobahn();
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
failed: none
--- timeout: 30
--- no_error_log
[error]
[alert]
[emerg]
