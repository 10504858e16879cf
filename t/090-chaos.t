# Chaos under load (issue 22), small: tools/chaos with 6 users, 20
# sockets for 20 s, each fault once (a socket that stops reading, a
# worker killed with -9, a reload, Redis restarted with its data, a
# reload, FerretDB restarted, Redis restarted empty, with two Redis
# shards one of them restarted empty, a reload), on NGINX, Redis and
# FerretDB of its own; then its report's invariants:
# every acked message stored, every stored message on every member's
# socket once (live or by resync), one message per tempId, no hole in
# any chat's seqs, no crash but the kill, memory back near its level.

use Test::Nginx::Socket;
use Cwd qw(abs_path);
use ChatTest;

# the tool runs its own NGINX (Debian's with the module), whatever pass
# this is: the reload and --asan passes would run the same thing again
if ($ENV{TEST_NGINX_USE_HUP} || !$ENV{TEST_NGINX_LOAD_MODULES}) {
    plan skip_all => "the plain pass only (not under --asan or reload)";
}

our $Root;
BEGIN { $Root = abs_path($ENV{TEST_NGINX_ROOT} || "."); }

plan 'no_plan';

sub main::chaos {
    my ($faults, $more) = @_;
    $more //= "";
    my $out = `$Root/tools/chaos --users 6 --sockets 20 --duration 20 --faults $faults $more 2>&1`;
    my $rc = $? >> 8;
    diag($out) if $rc || $ENV{CHAT_CHAOS_VERBOSE};
    my %r;
    for (split /\n/, $out) {
        $r{$1} = $2 if /^(sent|acked|stored|delivered\ live|lost|holes
                          |repeated\ after\ dedup|reconnects|result
                          |unanswered\ at\ the\ end)\s+(\S+)/x;
        $r{crash} = $1 if /^error log .*; (\d+) crash or alert lines/;
    }
    return join "\n",
        "exit=$rc",
        "result=" . ($r{result} // "none"),
        "sent=" . (($r{sent} // 0) > 100 ? "many" : $r{sent} // "none"),
        "acked=" . (defined $r{acked} && $r{acked} eq ($r{sent} // "")
                    ? "all" : $r{acked} // "none"),
        "unanswered=" . ($r{"unanswered at the end"} // "none"),
        "stored=" . (($r{stored} // 0) >= ($r{acked} // 1) ? "all"
                     : $r{stored} // "none"),
        "delivered=" . (($r{"delivered live"} // 0) > 0 ? "some" : "none"),
        "reconnected=" . (($r{reconnects} // 0) >= 20 ? "all" : "few"),
        "lost=" . ($r{lost} // "none"),
        "repeated=" . ($r{"repeated after dedup"} // "none"),
        "holes=" . ($r{holes} // "none"),
        "crashes=" . ($r{crash} // "none");
}

our $Got;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 20 sockets through a slow consumer and three reloads: nothing lost, nothing twice, no hole (a part of TEST 2: only with CHAT_CHAOS_ALL=1)
--- skip_eval: 3: !$ENV{CHAT_CHAOS_ALL}
--- config
    location = /t { return 200 "t\n"; }
--- init
$main::Got = main::chaos("slow,hup,hup,hup");
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
exit=0
result=ok
sent=many
acked=all
unanswered=0
stored=all
delivered=some
reconnected=all
lost=0
repeated=0
holes=0
crashes=0
--- timeout: 90



=== TEST 2: 20 sockets through every fault (a worker killed, Redis and FerretDB restarted too, and one of two Redis shards restarted empty)
--- config
    location = /t { return 200 "t\n"; }
--- init
$main::Got = main::chaos("slow,kill,hup,redis,hup,ferretdb,redis-flush,shard,hup",
                         "--shards 2");
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
exit=0
result=ok
sent=many
acked=all
unanswered=0
stored=all
delivered=some
reconnected=all
lost=0
repeated=0
holes=0
crashes=0
--- timeout: 90
