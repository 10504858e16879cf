# A resync storm, paced: 60 sockets each sync 8 chats at once (480 reads
# of the store, as after a fault that tells every socket to resync); at
# most 8 of those reads are in the worker's thread pool at a time
# (chat_mongo_tasks_pending, sampled through the storm by another
# process; unpaced it reached one a syncing socket); the sockets ask
# alike (one user's, from the same numbers), so a read that waits
# answers the others that ask the same (fewer than half the 480 reads
# reach the store); and every socket still gets every message of every
# chat once, then its synced.  TEST 2, with a slow store: reads shared
# while they wait (chat_resync_reads{state="shared"}), and those of
# sockets that close leave the queue at once.  TEST 3: two users who ask
# the same of the same chat never share a read (one of them deleted a
# message for himself: he must not get it, the other must).

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use DelayProxy;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(sleep time);

our ($Got);

BEGIN {
    ChatChats::init("697");
}

# FerretDB behind a proxy that holds every command 1 s while $Slow exists
our $Slow = DelayProxy::slow_store(1);

# every block's locations; TEST 2's and 3's store is the proxy (this runs before
# ChatChats' preprocessor: its http{} but for the store's port)
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        # many sockets of one user from one address
        chat_ws_conn_per_address off;
        chat_ws_unauth_per_address off;
    }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    return unless $block->name =~ /TEST [23]:/;
    $block->set_value("http_config", ChatChats::slow_http_config());
});

# a resync gauge (chat_resync_reads{state=$state}) now
sub gauge {
    my ($state) = @_;
    my $page = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    return $page =~ /^chat_resync_reads\{state="$state"\} (\d+)/m
           ? $1 : -1;
}

# the highest chat_mongo_tasks_pending seen until $stop exists, and the
# highest of a resync's reads running and waiting (chat_resync_reads), to
# $out
sub sampler {
    my ($stop, $out) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    return $pid if $pid;
    my $http = HTTP::Tiny->new(timeout => 2);
    my ($max, $n, $run, $wait) = (0, 0, 0, 0);
    my $until = time + 60;
    while (!-e $stop && time < $until) {
        my $r = $http->get(
            "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics");
        if ($r->{content} =~ /^chat_mongo_tasks_pending(?:\{\})? (\d+)/m) {
            $max = $1 if $1 > $max;
            $n++;
        }
        if ($r->{content} =~ /^chat_resync_reads\{state="running"\} (\d+)/m
            && $1 > $run)
        {
            $run = $1;
        }
        if ($r->{content} =~ /^chat_resync_reads\{state="waiting"\} (\d+)/m
            && $1 > $wait)
        {
            $wait = $1;
        }
        sleep 0.005;
    }
    open my $f, '>', $out or POSIX::_exit(1);
    print $f "$max $n $run $wait\n";
    close $f;
    POSIX::_exit(0);
}

# the store's tasks done so far (the thread pool's latency histogram)
sub tasks_done { ChatChats::metric("chat_mongo_latency_seconds_count") }

# two storms of their own: a reload between them would add nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "storms of their own: nothing for the reload pass";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 60 sockets resync 8 chats each at once: at most 8 reads in the pool, every message once, every socket synced
--- init
ChatChats::setup("dave", "erin");
my %Id = %ChatChats::Id;
my @r;
# alice's 8 chats: 4 private, 4 groups; 3 messages from another in each
my @chats;
for my $who (qw(bob carol dave erin)) {
    push @chats, ChatChats::api(alice => POST => "/api/chats/private",
                                { userId => $Id{$who} })->{chat}{id};
}
for my $i (1 .. 4) {
    push @chats, ChatChats::api(alice => POST => "/api/chats/group",
        { name => "pace $i",
          memberIds => [ map { $Id{$_} } qw(bob carol dave) ] })
        ->{chat}{id};
}
my $n = 0;
for my $c (@chats) {
    my $from = $c eq $chats[1] ? "carol" : $c eq $chats[2] ? "dave"
             : $c eq $chats[3] ? "erin" : "bob";
    for my $k (1 .. 3) {
        $n++;
        ChatChats::api($from => POST => "/api/messages",
            { chatId => $c, tempId => "pace-$$-$n", type => "text",
              content => "m$n" });
    }
}
my @s = map { ChatRT::connect("alice") } 1 .. 60;
sleep 0.5;
my $tasks = main::tasks_done();
my $stop = "/tmp/pace-$$.stop";
my $out = "/tmp/pace-$$.max";
unlink $stop, $out;
my $pid = main::sampler($stop, $out);
sleep 0.2;
# the storm: every socket asks for every chat from the start
my %from = map { $_ => 0 } @chats;
ChatRT::send_event($s[$_], "sync", { chats => \%from }, "sync-$_")
    for 0 .. $#s;
my ($synced, $all, $once) = (0, 0, 0);
for my $i (0 .. $#s) {
    my (%got, $done);
    while (my $e = ChatRT::next_event($s[$i], 10)) {
        $got{ $e->{data}{message}{id} }++ if $e->{event} eq "new_message";
        if ($e->{event} eq "synced") {
            $done = $e;
            last;
        }
    }
    $synced++ if $done && keys %{ $done->{data}{chats} } == 8
                 && !grep { !defined $_->{lastSeq} || $_->{lastSeq} != 3 }
                          values %{ $done->{data}{chats} };
    $all++ if keys %got == 24;
    $once++ if !grep { $_ != 1 } values %got;
}
open my $f, '>', $stop;
close $f;
waitpid $pid, 0;
open my $m, '<', $out or die "no sample";
my ($max, $samples, $run, $wait) = split ' ', <$m>;
close $m;
unlink $stop, $out;
push @r, "synced:$synced", "all_messages:$all", "once:$once";
# the storm filled the pace (so the bound was met under load), no more:
# the pool's whole count, so the worker's own tasks of the moment (a
# read the sync makes besides its pace, the walk's marks) may add two;
# unpaced it rises with the syncing sockets (the resync's own count, 8
# at most, is the gauge below)
push @r, "pending:" . ($max >= 4 && $max <= 10 ? "paced" : $max),
         "sampled:" . ($samples >= 5 ? "yes" : $samples);
# the gauges say the same: at most 8 running, the others waiting
push @r, "running:" . ($run >= 4 && $run <= 8 ? "paced" : $run),
         "waiting:" . ($wait > 0 ? "seen" : $wait);
# the same reads asked by many sockets reached the store fewer times
$tasks = main::tasks_done() - $tasks;
warn "storm: $tasks store tasks for 480 reads\n";
push @r, "store_reads:" . ($tasks < 240 ? "fewer" : $tasks);
close $_ for @s;
# and nothing is left of them or of the sends once the storm is over
my $page = HTTP::Tiny->new->get(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
push @r, "after:" . join ",", map {
    $page =~ /^\Q$_\E (\d+)/m ? $1 : "none"
} 'chat_resync_reads{state="running"}', 'chat_resync_reads{state="waiting"}',
  'chat_resync_reads{state="shared"}', 'chat_sends_in_flight';
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
synced:60 all_messages:60 once:60 pending:paced sampled:yes running:paced waiting:seen store_reads:fewer after:0,0,0,0
--- timeout: 120
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: the sockets close while their reads wait: the reads leave the queue at once, not when their turn comes
--- init
ChatChats::setup("dave", "erin");
my %Id = %ChatChats::Id;
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $Id{bob} })->{chat}{id};
my @s = map { ChatRT::connect("alice") } 1 .. 40;
sleep 0.5;
# from now on each of the store's commands takes a second more
open my $f, '>', $main::Slow or die;
close $f;
# 40 reads, of 20 kinds (from 20 numbers): 8 run at once, each for one
# socket (a read that runs takes nobody more); the other 32 wait, at most
# one read of a kind waiting, so at least 12 of them share one
ChatRT::send_event($s[$_], "sync", { chats => { $chat => $_ % 20 } },
                   "sync-$_")
    for 0 .. $#s;
my ($wait, $shared) = (0, 0);
for (1 .. 50) {
    ($wait, $shared) = map { main::gauge($_) } qw(waiting shared);
    last if $wait + $shared >= 32;
    sleep 0.1;
}
push @r, "queued:" . ($wait + $shared),
         "shared:" . ($shared >= 12 ? "12+" : $shared);
close $_ for @s;
sleep 0.5;
# the reads in the store go on (seconds each); those that waited are gone
push @r, "left:" . join ",", map { main::gauge($_) } qw(waiting shared);
push @r, "running:" . (main::gauge("running") > 0 ? "yes" : "no");
unlink $main::Slow;
my $run = -1;
for (1 .. 300) {
    $run = main::gauge("running");
    last if $run == 0;
    sleep 0.1;
}
push @r, "after:$run";
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
queued:32 shared:12+ left:0,0 running:yes after:0
--- timeout: 120
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: two users ask the same of one chat while their reads wait: no shared read, each sees what is theirs (bob's deleted-for-me message never reaches him)
--- init
ChatChats::setup("dave", "erin");
my %Id = %ChatChats::Id;
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "pace privacy", memberIds => [ $Id{bob}, $Id{carol} ] })
    ->{chat}{id};
my @m = map {
    ChatChats::api(carol => POST => "/api/messages",
        { chatId => $chat, tempId => "pp-$$-$_", type => "text",
          content => "p$_" })->{message}{id}
} 1 .. 3;
# bob deletes the second for himself
my ($st) = ChatChats::call(bob => DELETE => "/api/messages/$m[1]");
push @r, "hidden:$st";
my @fill = map { ChatRT::connect("alice") } 1 .. 8;
my $a = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
sleep 0.5;
open my $f, '>', $main::Slow or die;
close $f;
# 8 reads of other numbers fill the pace; then alice and bob ask alike
ChatRT::send_event($fill[$_], "sync", { chats => { $chat => 100 + $_ } },
                   "fill-$_")
    for 0 .. $#fill;
sleep 0.3;
ChatRT::send_event($_, "sync", { chats => { $chat => 0 } }, "both")
    for $a, $b;
my ($wait, $shared) = (0, 0);
for (1 .. 50) {
    ($wait, $shared) = map { main::gauge($_) } qw(waiting shared);
    last if $wait + $shared >= 2;
    sleep 0.1;
}
push @r, "waiting:$wait", "shared:$shared";
unlink $main::Slow;
for my $x ([alice => $a], [bob => $b]) {
    my (%got, $done);
    while (my $e = ChatRT::next_event($x->[1], 30)) {
        $got{ $e->{data}{message}{id} }++ if $e->{event} eq "new_message";
        if ($e->{event} eq "synced") {
            $done = $e;
            last;
        }
    }
    push @r, "$x->[0]:" . join(",", map { $got{ $m[$_] } ? "p" . ($_ + 1)
                                                         : () } 0 .. 2),
             "synced:" . ($done ? "yes" : "no");
}
close $_ for @fill, $a, $b;
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
hidden:200 waiting:2 shared:0 alice:p1,p2,p3 synced:yes bob:p1,p3 synced:yes
--- timeout: 120
--- no_error_log
[error]
[alert]
[emerg]
