# Metrics: the chat_metrics page in the Prometheus text format, parsed by
# the reference parser (python3-prometheus-client); sockets open by codec,
# sign-ins, messages stored by type, deliveries and their latency, REST
# answers by route and status class with their time, Redis and MongoDB
# latency, one-time codes sent; counters summed over two workers, and a
# worker killed with SIGKILL takes its sockets out and leaves its counts;
# no counter goes down while the server reloads; a killed worker not
# reaped yet counts no sockets.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use JSON::PP;
use IPC::Open2;
use POSIX ();
use Time::HiRes qw(sleep);

our ($Got, %Id);

BEGIN {
    ChatChats::init("671");
}

*Id = \%ChatChats::Id;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 60);
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

# the page, parsed: { 'name{labels}' => value }
sub main::scrape {
    my $r = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics");
    die "GET /metrics: $r->{status}" unless $r->{status} == 200;
    die "content type $r->{headers}{'content-type'}"
        unless $r->{headers}{'content-type'} =~ m{^text/plain; version=0\.0\.4};
    my $pid = open2(my $out, my $in, "/usr/bin/python3",
                    "$ENV{TEST_NGINX_ROOT}/t/lib/prom_parse.py");
    print $in $r->{content};
    close $in;
    my $json = do { local $/; <$out> };
    waitpid $pid, 0;
    die "the page does not parse" if $?;
    return decode_json($json);
}

sub main::d {
    my ($a, $b, $k) = @_;
    return ($b->{$k} // 0) - ($a->{$k} // 0);
}

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: what the page counts, parsed by the reference parser, on two workers
--- init
my $m0 = main::scrape();
ChatChats::setup();
my $m1 = main::scrape();
my @r = ("otp:" . main::d($m0, $m1, 'chat_otp_sends_total{result="sent"}'));
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @s = map { ChatRT::connect("bob") } 1 .. 2;
ChatRT::drain($_, 0.2) for @s;
my $m2 = main::scrape();
push @r, "open:" . main::d($m1, $m2, 'chat_sockets_open{codec="plain",transport="websocket"}'),
         "signins:" . main::d($m1, $m2, 'chat_signins_total{codec="plain"}');
for my $i (1 .. 3) {
    ChatChats::api(alice => POST => "/api/messages",
        { chatId => $chat, tempId => "mt-$$-$i", type => "text", content => "m$i" });
}
ChatChats::api(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "ml-$$", type => "location",
      content => { lat => 1, lng => 2 } });
my ($status) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "bad id!", type => "text", content => "x" });
# each of bob's sockets got the four
my $got = 0;
for my $s (@s) {
    $got += grep { $_->{event} eq "new_message" } ChatRT::drain($s, 0.5);
}
my $m3 = main::scrape();
my $route = 'method="POST",route="/api/messages"';
push @r, "text:" . main::d($m2, $m3, 'chat_messages_stored_total{type="text"}'),
         "location:" . main::d($m2, $m3, 'chat_messages_stored_total{type="location"}'),
         "got:$got",
         "deliveries>=8:" . (main::d($m2, $m3, 'chat_deliveries_total{}') >= 8 ? 1 : 0),
         "latency:" . main::d($m2, $m3, 'chat_delivery_latency_seconds_count{}'),
         "2xx:" . main::d($m2, $m3, "chat_http_requests_total{$route,status=\"2xx\"}"),
         "4xx($status):" . main::d($m2, $m3, "chat_http_requests_total{$route,status=\"4xx\"}"),
         "timed:" . main::d($m2, $m3, "chat_http_request_duration_seconds_count{$route}");
# histograms: cumulative buckets, +Inf the count
my $ok = 1;
for my $h ('chat_delivery_latency_seconds', 'chat_redis_latency_seconds',
           'chat_mongo_latency_seconds') {
    my $inf = $m3->{"${h}_bucket{le=\"+Inf\"}"};
    $ok = 0 unless $inf && $inf == $m3->{"${h}_count{}"}
                   && $m3->{"${h}_bucket{le=\"0.001\"}"} <= $m3->{"${h}_bucket{le=\"10.000\"}"};
}
push @r, "histograms:$ok",
         "pending>=0:" . ($m3->{'chat_mongo_tasks_pending{}'} >= 0 ? 1 : 0);
close $_ for @s;
my $m4;
for (1 .. 20) {
    $m4 = main::scrape();
    last if main::d($m1, $m4, 'chat_sockets_open{codec="plain",transport="websocket"}') == 0;
    sleep 0.1;
}
push @r, "closed:" . main::d($m1, $m4, 'chat_sockets_open{codec="plain",transport="websocket"}');
$main::Got = join " ", @r;
--- response_body
otp:3 open:2 signins:2 text:3 location:1 got:8 deliveries>=8:1 latency:8 2xx:4 4xx(400):1 timed:5 histograms:1 pending>=0:1 closed:0



=== TEST 2: a worker killed with SIGKILL: its sockets leave the page, its counts stay
--- init
ChatChats::setup();
my @s = map { ChatRT::connect("carol") } 1 .. 6;
sleep 0.3;
my $m0 = main::scrape();
my $open = $m0->{'chat_sockets_open{codec="plain",transport="websocket"}'};
my $signins = $m0->{'chat_signins_total{codec="plain"}'};
# the worker of the last one, from its log line
open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log" or die;
my $pid;
while (<$log>) {
    $pid = $1 if /\[info\] (\d+)#\d+: .*chat ws: authenticated as \Q$ChatChats::Id{carol}\E/;
}
close $log;
kill "KILL", $pid;
close $_ for @s;
my $m1;
for (1 .. 30) {
    sleep 0.2;
    $m1 = eval { main::scrape() } or next;
    last if $m1->{'chat_sockets_open{codec="plain",transport="websocket"}'} == 0;
}
my @r = ("before:$open",
         "after:" . $m1->{'chat_sockets_open{codec="plain",transport="websocket"}'},
         "signins kept:" . ($m1->{'chat_signins_total{codec="plain"}'} >= $signins ? 1 : 0));
# a failure says which it is: the killed worker not reaped yet (its
# slot read as alive), or a survivor that did not count its closes
if ($m1->{'chat_sockets_open{codec="plain",transport="websocket"}'}) {
    my $st = "gone";
    if (open my $f, "<", "/proc/$pid/stat") {
        $st = (split ' ', scalar <$f>)[2];
        close $f;
    }
    push @r, "killed $pid: $st";
    # the nginx processes now, and the count 3 s later
    my @ps = map { m{/proc/(\d+)/} ? $1 : () } glob "/proc/[0-9]*/stat";
    for my $p (@ps) {
        open my $f, "<", "/proc/$p/stat" or next;
        my @f = split ' ', scalar <$f>;
        close $f;
        push @r, "nginx $p ($f[2], parent $f[3])" if $f[1] eq "(nginx)";
    }
    sleep 3;
    my $m2 = eval { main::scrape() } // {};
    push @r, "3 s later:"
        . ($m2->{'chat_sockets_open{codec="plain",transport="websocket"}'}
           // "?");
}
$main::Got = join " ", @r;
--- response_body
before:6 after:0 signins kept:1
--- no_error_log
[emerg]



=== TEST 3: calls by how they ended, and their feedback (a participant's first): ratings, round-trip time, loss
--- init
ChatChats::setup();
ChatChats::api(alice => POST => "/api/users/add-contact", { userId => $ChatChats::Id{bob} });
ChatChats::api(bob => POST => "/api/users/add-contact", { userId => $ChatChats::Id{alice} });
my $m0 = main::scrape();
my @r;
# rejected (the callee ends it while it rings), cancelled (the caller)
for my $who (qw(bob alice)) {
    my $call = ChatChats::api(alice => POST => "/api/calls/initiate",
                              { userId => $ChatChats::Id{bob}, type => "audio" })->{call};
    ChatChats::api($who => PUT => "/api/calls/$call->{id}/end");
    push @r, ChatChats::api(alice => POST => "/api/calls/$call->{id}/feedback",
        { rating => 4, stats => { rttMs => 120, packetLoss => 0.02 } })
        ? "fb" : "no-fb";
}
# a replaced feedback is not counted again
my $h = ChatChats::api(alice => GET => "/api/calls/history")->{items}[0];
ChatChats::api(alice => POST => "/api/calls/$h->{id}/feedback", { rating => 1 });
my $m1 = main::scrape();
push @r, map({ "$_:" . main::d($m0, $m1, "chat_calls_total{status=\"$_\"}") }
             qw(rejected cancelled answered)),
         map({ "r$_:" . main::d($m0, $m1, "chat_call_feedback_total{rating=\"$_\"}") }
             qw(1 4)),
         "rtt:" . main::d($m0, $m1, 'chat_call_rtt_seconds_count{}'),
         "rtt<=0.25:" . main::d($m0, $m1, 'chat_call_rtt_seconds_bucket{le="0.250"}'),
         "rtt<=0.1:" . main::d($m0, $m1, 'chat_call_rtt_seconds_bucket{le="0.100"}'),
         "loss<=0.025:" . main::d($m0, $m1, 'chat_call_packet_loss_ratio_bucket{le="0.025"}');
$main::Got = join " ", @r;
--- response_body
fb fb rejected:1 cancelled:1 answered:0 r1:0 r4:2 rtt:2 rtt<=0.25:2 rtt<=0.1:0 loss<=0.025:2



=== TEST 4: the page answers GET and HEAD only; chat_metrics needs no other location
--- config
    location /api/ { chat_api; }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
--- init
my $r = HTTP::Tiny->new->request("POST",
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics", { content => "x" });
my $h = HTTP::Tiny->new->request("HEAD",
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics");
$main::Got = "post:$r->{status} head:$h->{status}:" . length($h->{content} // "");
--- response_body
post:405 head:200:0



=== TEST 5: counters never go down while the server reloads: scrapes in a loop across twenty reloads
--- init
ChatChats::setup();
my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics";
# six scrapers, each comparing every counter with its own last scrape
# until told to stop (SIGTERM)
my @kids;
for my $k (1 .. 6) {
    pipe my $rd, my $wr or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $rd;
        my ($stop, %last, @down) = (0);
        local $SIG{TERM} = sub { $stop = 1 };
        my ($n, $ht) = (0, HTTP::Tiny->new);
        until ($stop) {
            my $r = $ht->get($url);
            next unless $r->{status} == 200;
            $n++;
            for (split /\n/, $r->{content}) {
                next unless /^(chat_\w+?_(?:total|count|sum|bucket)(?:\{[^}]*\})?) (\S+)$/;
                push @down, "$1 $last{$1}->$2"
                    if defined $last{$1} && $2 < $last{$1};
                $last{$1} = $2;
            }
        }
        splice @down, 3;
        print $wr "$n " . (@down ? join(",", @down) : "none") . "\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    push @kids, [$pid, $rd];
}
open my $f, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
chomp(my $master = <$f>);
close $f;
# each reload moves both old workers' slots into the page's retired counts
for (1 .. 20) {
    ChatChats::api(alice => GET => "/api/chats") for 1 .. 2;
    kill "HUP", $master;
    sleep 0.4;
}
sleep 0.5;
kill "TERM", map { $_->[0] } @kids;
my ($scrapes, @down) = (0);
for my $k (@kids) {
    my $line = readline $k->[1];
    waitpid $k->[0], 0;
    my ($n, $d) = split " ", $line // "0 lost", 2;
    chomp $d;
    $scrapes += $n;
    push @down, $d unless $d eq "none";
}
$main::Got = "scrapes>=100:" . ($scrapes >= 100 ? 1 : "0 ($scrapes)")
    . " down:" . (@down ? join(" ", @down) : "none");
--- response_body
scrapes>=100:1 down:none



=== TEST 6: a worker killed and not reaped yet (the master stopped): its sockets are already off the page
--- init
ChatChats::setup();
my @s = map { ChatRT::connect("carol") } 1 .. 4;
sleep 0.3;
# which worker holds each of the four, from their log lines
open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log" or die;
my @pids;
while (<$log>) {
    push @pids, $1 if /\[info\] (\d+)#\d+: .*chat ws: authenticated as \Q$ChatChats::Id{carol}\E/;
}
close $log;
@pids = @pids[-4 .. -1];
my $pid = $pids[-1];
my $left = grep { $_ != $pid } @pids;
open my $f, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
chomp(my $master = <$f>);
close $f;
my $m0 = main::scrape();
kill "STOP", $master;
kill "KILL", $pid;
my $st = "gone";
for (1 .. 20) {
    sleep 0.05;
    open my $p, "<", "/proc/$pid/stat" or last;
    $st = (split ' ', scalar <$p>)[2];
    close $p;
    last if $st eq "Z";
}
my $m1 = eval { main::scrape() };
kill "CONT", $master;
close $_ for @s;
my $open = 'chat_sockets_open{codec="plain",transport="websocket"}';
$main::Got = "before:" . ($m0->{$open} == 4 ? 4 : $m0->{$open})
    . " killed:$st"
    . " after:" . (!$m1 ? "no page"
                   : $m1->{$open} == $left ? "the survivor's"
                   : "$m1->{$open} (the survivor's $left)");
--- response_body
before:4 killed:Z after:the survivor's
--- no_error_log
[emerg]
