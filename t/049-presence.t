# Presence that cannot outlive its workers and ends in the right state:
# a worker killed with SIGKILL takes its users offline within the ttl,
# quick connects and disconnects of one user end with what is open, and
# a hidden online status publishes nothing, on either path.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use Time::HiRes ();

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    # a worker silent for 2 s is dead; the others beat every 0.67 s
    # presence is polled through GET /api/users/:id, past its default
    # limit of reads a minute
    ChatChats::init("649", "chat_presence_ttl 2s;\n"
                    . "    chat_user_view_limit 100000 1m;");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; chat_ws_auth_timeout 10s; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 60);
    if ($block->name =~ /a reload/) {
        # time for the old workers to go and the client to come back
        $block->set_value("http_config", ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
    chat_group_max_size 4;
    chat_presence_ttl 5s;
    chat_user_view_limit 100000 1m;
});
    }
});

sub main::worker_of { ChatRT::worker_of(@_) }

# a socket of $who on a worker other than $avoid: (socket, its worker)
sub main::socket_elsewhere {
    my ($who, $avoid) = @_;
    for (1 .. 40) {
        my $s = ChatRT::connect($who);
        my $pid = main::worker_of($who);
        return ($s, $pid) if $pid && $pid != $avoid;
        close $s;
    }
    die "no socket of $who on another worker than $avoid";
}

# GET /api/users/:id of $whom as $who: once, or until online is $want
# (at most 8 s)
sub main::rest_online {
    my ($who, $whom, $want) = @_;
    my $u;
    for (1 .. 80) {
        # new workers (a reload, a respawn) answer 503 until they reach
        # their back ends; an old worker told to go may cut a request it
        # took short (599: no answer): asked again
        my ($status, $body) = ChatChats::call($who => GET =>
                                              "/api/users/$Id{$whom}");
        die "GET /api/users: $status" unless $status == 200
                                             || $status == 503
                                             || $status == 599;
        $u = $body->{user} if $status == 200;
        last if $u && (!defined $want
                       || exists $u->{online}
                          && ($u->{online} ? 1 : 0) == $want);
        Time::HiRes::sleep(0.1);
    }
    return "unknown" unless $u;
    return !exists $u->{online} ? "hidden" : $u->{online} ? "on" : "off";
}

# the presence events of one socket until $quiet seconds pass without one
sub main::presence_events {
    my ($s, $quiet) = @_;
    return grep { $_->{event} =~ /^user_/ } ChatRT::drain($s, $quiet);
}

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a worker killed with SIGKILL: its user goes offline within the ttl, and the watcher hears it
--- init
ChatChats::setup("dave");
my @r;
my $c = ChatRT::connect("carol");
my $cpid = main::worker_of("carol");
my ($d, $dpid) = main::socket_elsewhere("dave", $cpid);
# the sockets that landed on carol's worker came and went: let them settle
Time::HiRes::sleep(1);
push @r, "before:" . main::rest_online(carol => "dave", 1);
ChatRT::send_event($c, "subscribe_presence", { userId => $ChatChats::Id{dave} }, 1);
my $ack = ChatRT::wait_for($c, "ack", 3, 1);
push @r, "ack:" . ($ack->{data}{user}{online} ? "on" : "off");
my $t0 = Time::HiRes::time();
kill "KILL", $dpid;
my $e = ChatRT::wait_for($c, "user_offline", 15);
my $took = Time::HiRes::time() - $t0;
push @r, $e && $e->{data}{userId} eq $ChatChats::Id{dave} ? "offline" : "no-offline";
push @r, $e && ($e->{data}{lastSeen} // "") =~ /^\d{4}-\d\d-\d\dT/
         ? "last-seen" : "no-last-seen";
# 2 s of ttl, a beat of another worker, a store: well under 8 s
push @r, $took < 8 ? "within-bound" : "late:$took";
push @r, "rest:" . main::rest_online(carol => "dave", 0);
# the state stays: nothing comes that says otherwise
my @then = main::presence_events($c, 1.5);
push @r, !@then || $then[-1]{event} eq "user_offline" ? "stays-off"
                                                      : "then:$then[-1]{event}";
$main::Got = "@r";
--- response_body
before:on ack:on offline last-seen within-bound rest:off stays-off
--- no_error_log
[error]
[emerg]
--- error_log
[alert]
exited on signal 9



=== TEST 2: 20 quick connects and disconnects beside a long-lived socket, then 20 hand-overs: the last event and REST say what is open
--- init
ChatChats::setup("dave");
my @r;
push @r, "start:" . main::rest_online(carol => "dave", 0);
my $c = ChatRT::connect("carol");
ChatRT::send_event($c, "subscribe_presence", { userId => $ChatChats::Id{dave} }, 1);
ChatRT::wait_for($c, "ack", 3, 1);
my $long;
for my $i (1 .. 20) {
    # half wait to be signed in, half go before they are
    my $s = ChatRT::connect("dave", no_wait => $i % 2);
    close $s;
    $long = ChatRT::connect("dave") if $i == 10;
}
my @e = main::presence_events($c, 2);
push @r, "events:" . (@e >= 1 ? "some" : "none");
push @r, "last:" . ($e[-1] ? $e[-1]{event} : "none");
push @r, "rest:" . main::rest_online(carol => "dave", 1);
close $long;
@e = main::presence_events($c, 2);
push @r, "last:" . ($e[-1] ? $e[-1]{event} : "none");
push @r, "rest:" . main::rest_online(carol => "dave", 0);
# hand-overs: each socket closes as the next one signs in, so the
# offline of the one and the online of the next are written at the same
# moment (on one worker or two); REST must end online every time
my $on = 0;
my $d = ChatRT::connect("dave");
for (1 .. 20) {
    my $n = ChatRT::connect("dave", no_wait => 1);
    close $d;
    $d = $n;
    $on++ if main::rest_online(carol => "dave", 1) eq "on";
}
push @r, "handovers-on:$on";
@e = main::presence_events($c, 1);
push @r, "last:" . ($e[-1] ? $e[-1]{event} : "none");
close $d;
push @r, "rest:" . main::rest_online(carol => "dave", 0);
$main::Got = "@r";
--- response_body
start:off events:some last:user_online rest:on last:user_offline rest:off handovers-on:20 last:user_online rest:off
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: privacy as before: lastSeen hidden is left out; online hidden publishes nothing, killed worker or not
--- init
ChatChats::setup("dave");
my @r;
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "everyone", lastSeen => "nobody" } });
my $c = ChatRT::connect("carol");
my $cpid = main::worker_of("carol");
ChatRT::send_event($c, "subscribe_presence", { userId => $ChatChats::Id{dave} }, 1);
ChatRT::wait_for($c, "ack", 3, 1);
my $d = ChatRT::connect("dave");
my $e = ChatRT::wait_for($c, "user_online", 5);
push @r, $e ? "online" : "no-online";
close $d;
$e = ChatRT::wait_for($c, "user_offline", 5);
push @r, $e ? "offline:" . (exists $e->{data}{lastSeen} ? "seen" : "unseen")
            : "no-offline";
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "nobody" } });
$d = ChatRT::connect("dave");
close $d;
my ($k, $kpid) = main::socket_elsewhere("dave", $cpid);
kill "KILL", $kpid;
# the ttl and a sweep pass: still nothing for carol
push @r, "hidden-events:" . scalar(main::presence_events($c, 5));
push @r, "rest:" . main::rest_online(carol => "dave");
$main::Got = "@r";
--- response_body
online offline:unseen hidden-events:0 rest:hidden
--- no_error_log
[error]
[emerg]
--- error_log
[alert]
exited on signal 9



=== TEST 4: a reload: the socket closes 1001 and comes back within the ttl (5 s here); the user never reads as offline, and goes offline when it closes
--- init
ChatChats::setup("dave");
my @r;
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "everyone", lastSeen => "everyone" } });
push @r, "start:" . main::rest_online(carol => "dave", 0);
my $d = ChatRT::connect("dave");
push @r, "on:" . main::rest_online(carol => "dave", 1);
open my $fh, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
my $master = <$fh>;
chomp $master;
my @old = split " ", `ps -o pid= --ppid $master`;
kill "HUP", $master;
my $code = "none";
while (my $f = ChatWS::read_frame($d, 10)) {
    next unless $f->{opcode} == 8;
    $code = unpack("n", $f->{payload});
    ChatWS::send_raw($d, ChatWS::frame(opcode => 8, payload => pack("n", 1001)));
    last;
}
close $d;
push @r, "closed:$code";
# the client waits half a second, then reconnects (as a client does, not
# after the old workers are gone: under load they may take longer to go
# than the ttl); REST is read meanwhile
my @seen;
my $t0 = Time::HiRes::time();
while (Time::HiRes::time() - $t0 < 0.5) {
    push @seen, main::rest_online(carol => "dave");
    Time::HiRes::sleep(0.05);
}
$d = undef;
for (1 .. 20) {
    $d = eval { ChatRT::connect("dave") } and last;
    Time::HiRes::sleep(0.1);
}
# the old workers go
for (1 .. 100) {
    last unless grep { kill 0, $_ } @old;
    Time::HiRes::sleep(0.1);
}
# past the ttl: the old worker is swept, its user counted by a new one
$t0 = Time::HiRes::time();
while (Time::HiRes::time() - $t0 < 6) {
    push @seen, main::rest_online(carol => "dave");
    Time::HiRes::sleep(0.1);
}
push @r, "meanwhile:" . join(",", sort keys %{{ map { $_ => 1 } @seen }});
close $d;
push @r, "end:" . main::rest_online(carol => "dave", 0);
$main::Got = "@r";
--- response_body
start:off on:on closed:1001 meanwhile:on end:off



=== TEST 5: a worker of the build before presence's hashes (its user in the set presence:u:, presence:n:): its user reads online while it counts them, and goes offline when it is swept
--- init
ChatChats::setup("dave");
my @r;
my $rp = $ENV{TEST_NGINX_REDIS_PORT};
my $id = $ChatChats::Id{dave};
my $redis = sub { my @o = `redis-cli -p $rp @_`; chomp @o; "@o" };
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "everyone", lastSeen => "everyone" } });
my $d = ChatRT::connect("dave");
push @r, "on:" . main::rest_online(carol => "dave", 1);
# an old worker that beat just now and counts dave with two sockets
my $w = "old-build:1:1";
$redis->("EVAL \"local t = redis.call('TIME') "
         . "redis.call('ZADD', 'presence:workers', "
         . "t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1]) "
         . "redis.call('SADD', 'presence:w:' .. ARGV[1], ARGV[2]) "
         . "redis.call('SADD', 'presence:u:' .. ARGV[2], ARGV[1]) "
         . "redis.call('HSET', 'presence:n:' .. ARGV[2], ARGV[1], '2') "
         . "return 1\" 0 $w $id");
close $d;
Time::HiRes::sleep(0.5);
# the new worker's last socket of dave went: the old one still counts him
push @r, "still:" . main::rest_online(carol => "dave");
# the old worker never beats again: swept within the ttl (2 s)
push @r, "swept:" . main::rest_online(carol => "dave", 0);
my (undef, $u) = ChatChats::call(carol => GET => "/api/users/$id");
push @r, ($u->{user}{lastSeen} // "") =~ /^\d{4}-\d\d-\d\dT/
         ? "last-seen" : "no-last-seen";
push @r, "old_keys:" . $redis->("EXISTS presence:u:$id presence:n:$id "
                                . "presence:w:$w");
push @r, "old_worker:" . ($redis->("ZSCORE presence:workers $w") || "gone");
$main::Got = "@r";
--- response_body
on:on still:on swept:off last-seen old_keys:0 old_worker:gone
--- no_error_log
[error]
[alert]
[emerg]
