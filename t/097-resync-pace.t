# A resync storm, paced: 60 sockets each sync 8 chats at once (480 reads
# of the store, as after a fault that tells every socket to resync); at
# most 8 of those reads are in the worker's thread pool at a time
# (chat_mongo_tasks_pending, sampled through the storm by another
# process; unpaced it reached one a syncing socket), and every socket
# still gets every message of every chat once, then its synced.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(sleep time);

our ($Got);

BEGIN {
    ChatChats::init("697");
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

# one block: a reload between blocks would add nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 60 sockets resync 8 chats each at once: at most 8 reads in the pool, every message once, every socket synced
--- config
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        # 60 sockets of one user from one address
        chat_ws_conn_per_address off;
        chat_ws_unauth_per_address off;
    }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
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
# the storm filled the pace (so the bound was met under load), no more
push @r, "pending:" . ($max >= 4 && $max <= 8 ? "paced" : $max),
         "sampled:" . ($samples >= 5 ? "yes" : $samples);
# the gauges say the same: at most 8 running, the others waiting
push @r, "running:" . ($run >= 4 && $run <= 8 ? "paced" : $run),
         "waiting:" . ($wait > 8 ? "seen" : $wait);
close $_ for @s;
# and nothing is left of them or of the sends once the storm is over
my $page = HTTP::Tiny->new->get(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
push @r, "after:" . join ",", map {
    $page =~ /^\Q$_\E (\d+)/m ? $1 : "none"
} 'chat_resync_reads{state="running"}', 'chat_resync_reads{state="waiting"}',
  'chat_sends_in_flight';
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
synced:60 all_messages:60 once:60 pending:paced sampled:yes running:paced waiting:seen after:0,0,0
--- timeout: 120
--- no_error_log
[error]
[alert]
[emerg]
