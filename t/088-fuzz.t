# The fuzz targets (fuzz/, tools/fuzz): each is built with clang
# (libFuzzer, ASan, UBSan), runs every input of its corpus (the crashes
# found and fixed are there), then fuzzes for a few seconds.  A crash, a
# sanitizer report or an alert of our code fails the target's test, and
# the input that did it is printed.  The long runs are `tools/fuzz run
# NAME SECONDS` (README, "Fuzzing").

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);
use Test::More;

# no NGINX here: what it checks is the same in every pass
if ($ENV{TEST_NGINX_USE_HUP} || !$ENV{TEST_NGINX_LOAD_MODULES}) {
    plan skip_all => "the plain pass only (not under --asan or reload)";
}

my $root = "$FindBin::Bin/..";
my $fuzz = "$root/tools/fuzz";
my $secs = $ENV{CHAT_FUZZ_SECONDS} || 4;

my $out = `"$fuzz" 2>&1`;
if ($? >> 8 == 3) {
    plan skip_all => "no clang: tools/bootstrap installs it";
}

is($?, 0, 'tools/fuzz builds every target') or do {
    diag($out);
    done_testing();
    exit;
};

my @targets = split /\s+/, `"$fuzz" list`;
ok(@targets >= 6, 'six targets or more: ' . join(' ', @targets));

for my $t (@targets) {
    my $art = "$root/build/fuzz/crash-$t-";
    unlink glob("$art*");

    # what it finds is kept apart: each run starts from the seeds
    local $ENV{CHAT_FUZZ_NEW_CORPUS} = tempdir(CLEANUP => 1);
    my $log = `"$fuzz" run $t $secs 2>&1`;
    my $rc = $? >> 8;
    my ($runs) = $log =~ /stat::number_of_executed_units:\s*(\d+)/;

    ok($rc == 0 && $log =~ /^Done \d+ runs/m,
       "$t: $secs s clean (" . ($runs // 0) . " runs)") or do {
        my @lines = split /\n/, $log;
        # what went wrong first, then how the run ended
        diag(join "\n", grep { /^fuzz:|ERROR:|runtime error:/ } @lines);
        diag(join "\n", grep { defined } @lines[-30 .. -1]);
        for my $f (glob("$art*")) {
            open my $fh, '<:raw', $f or next;
            local $/;
            my $in = <$fh>;
            (my $shown = $in) =~ s/([^\x20-\x7e])/sprintf "\\x%02x", ord $1/ge;
            diag("the input ($f, " . length($in) . " bytes): \"$shown\"");
        }
    };
}

done_testing();
