# Overload: a worker holds at most chat_send_max_pending sends in flight
# (started, not yet stored).  With MongoDB slowed by a delaying proxy, a
# burst of sends beyond the bound is refused at once, as a retryable
# 503 "overloaded" (REST: with Retry-After; sockets: the send's error,
# status 503); what was accepted is stored, what was refused is not, and
# a retry once the queue drained is stored.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use ChatSIO;
use DelayProxy;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(sleep);

our ($ProxyPid, $ProxyPort);

BEGIN {
    ($ProxyPid, $ProxyPort) = DelayProxy::start($ENV{TEST_NGINX_MONGO_PORT},
                                                0.5);
    $ENV{TEST_NGINX_MONGO_PORT} = $ProxyPort;
    ChatChats::init("658", "chat_send_max_pending 5;");
}

END { DelayProxy::stop($ProxyPid) if $ProxyPid }

our $Got;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

# every stored message of a chat with a tempId (tombstones left out)
sub main::stored {
    my ($who, $chat) = @_;
    my (%all, $after);
    $after = 0;
    for (;;) {
        # a thread pool with a queue of 1 (TEST 4) refuses a read while the
        # sends' own work after their commit still holds it: read again
        my ($st, $b);
        for (1 .. 60) {
            ($st, $b) = ChatChats::call($who => GET =>
                "/api/chats/$chat/messages?after=$after&limit=100");
            last if $st != 503;
            Time::HiRes::sleep(0.5);
        }
        die "GET messages: $st" unless $st == 200;
        my $page = $b->{items};
        last unless @$page;
        for (@$page) {
            $all{$_->{tempId}}++ if ($_->{type} // "") ne "tombstone"
                                    && defined $_->{tempId};
        }
        $after = $page->[-1]{seq};
    }
    return \%all;
}

sub main::burst { ChatChats::burst(@_) }

# the plain pass only: a load test of two minutes (a reload between its
# blocks adds nothing; under the sanitizers the refusals' path runs in
# t/098 and t/058's bursts add only minutes to CI)
if ($ENV{TEST_NGINX_USE_HUP} || !$ENV{TEST_NGINX_LOAD_MODULES}) {
    plan skip_all => "the plain pass only (not under --asan or reload)";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 30 concurrent POSTs against a bound of 5: the rest 503 overloaded with Retry-After; every 201 stored, no 503 stored; a retry after the drain is stored
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @r = main::burst(alice => $chat, "ov", 30);
my (%created, %refused, @odd);
for my $i (0 .. $#r) {
    my ($status, $retry, $body) = @{ $r[$i] };
    my $temp = "ov-" . ($i + 1);
    if ($status == 201 && ($body->{message}{tempId} // "") eq $temp) {
        $created{$temp} = 1;
    } elsif ($status == 503 && ($retry // "") eq "1"
             && ($body->{error}{code} // "") eq "overloaded") {
        $refused{$temp} = 1;
    } else {
        push @odd, "$temp:$status";
    }
}
my $stored = main::stored(alice => $chat);
my @lost = grep { !$stored->{$_} } keys %created;
my @leaked = grep { $stored->{$_} } keys %refused;
my ($again) = sort keys %refused;
my $retry = $again
    ? ChatChats::api(alice => POST => "/api/messages",
                     { chatId => $chat, tempId => $again, type => "text",
                       content => "again" })->{message}{tempId} // "" : "";
$stored = main::stored(alice => $chat);
$main::Got = "created:" . (keys(%created) >= 1 && keys(%created) <= 5
                           ? "1-5" : scalar keys %created)
    . " refused:" . (keys(%created) + keys(%refused) == 30 ? "rest" : "?")
    . " odd:" . join(",", @odd)
    . " lost:" . scalar(@lost) . " leaked:" . scalar(@leaked)
    . " retry:" . ($retry eq ($again // "-") && $stored->{$again}
                   ? "stored" : "no");
--- response_body
created:1-5 refused:rest odd: lost:0 leaked:0 retry:stored



=== TEST 2: send_message on 30 sockets at once (a socket runs its events in turn): beyond the bound each gets its error, code overloaded, status 503; acked ones stored, refused ones not; a retry is acked
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{carol} })->{chat}{id};
my @ws = map { ChatRT::connect("alice") } 1 .. 30;
for my $i (1 .. 30) {
    ChatRT::send_event($ws[$i - 1], "send_message",
                       { chatId => $chat, tempId => "ws-$i", type => "text",
                         content => "ws $i" }, "s$i");
}
my (%acked, %refused, @odd);
for my $i (1 .. 30) {
    my $temp = "ws-$i";
    my $e = ChatRT::wait_for($ws[$i - 1], "ack", 60, "s$i");
    if ($e && $e->{event} eq "ack") {
        $acked{$temp} = 1;
    } elsif ($e && $e->{event} eq "error" && ($e->{status} // 0) == 503
             && ($e->{error}{code} // "") eq "overloaded") {
        $refused{$temp} = 1;
    } else {
        push @odd, "$temp:" . ($e ? $e->{event} : "none");
    }
}
my $stored = main::stored(alice => $chat);
my @lost = grep { !$stored->{$_} } keys %acked;
my @leaked = grep { $stored->{$_} } keys %refused;
my ($again) = sort keys %refused;
my $retry = "no";
if ($again) {
    ChatRT::send_event($ws[0], "send_message",
                       { chatId => $chat, tempId => $again, type => "text",
                         content => "again" }, "again");
    my $e = ChatRT::wait_for($ws[0], "ack", 60, "again");
    $retry = "stored" if $e && $e->{event} eq "ack"
                         && main::stored(alice => $chat)->{$again};
}
$main::Got = "acked:" . (keys(%acked) >= 1 && keys(%acked) <= 5
                         ? "1-5" : scalar keys %acked)
    . " refused:" . (keys(%acked) + keys(%refused) == 30 ? "rest" : "?")
    . " odd:" . join(",", @odd)
    . " lost:" . scalar(@lost) . " leaked:" . scalar(@leaked)
    . " retry:$retry";
--- response_body
acked:1-5 refused:rest odd: lost:0 leaked:0 retry:stored



=== TEST 3: send_message from 30 Socket.IO clients at once: beyond the bound each gets its error ack, code overloaded, status 503; acked ones stored, refused ones not
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $out = ChatSIO::run("flood", chat => $chat, n => 30, prefix => "sio");
my %r = map { split /=/, $_, 2 } split / /, $out;
my @acked = grep { $_ ne "-" } split /,/, $r{acked} // "-";
my @refused = grep { $_ ne "-" } split /,/, $r{refused} // "-";
my $stored = main::stored(alice => $chat);
my @lost = grep { !$stored->{$_} } @acked;
my @leaked = grep { $stored->{$_} } @refused;
$main::Got = "acked:" . (@acked >= 1 && @acked <= 5 ? "1-5" : scalar @acked)
    . " refused:" . (@acked + @refused == 30 ? "rest" : "? $out")
    . " codes:" . ($r{codes} // "? $out")
    . " lost:" . scalar(@lost) . " leaked:" . scalar(@leaked);
--- response_body
acked:1-5 refused:rest codes:overloaded:503 lost:0 leaked:0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: MongoDB's thread pool full (queue of 1): a send_message it cannot take is refused as service_unavailable, status 503 as REST says it, on the plain WebSocket and on Socket.IO; acked ones stored, refused ones not
--- skip_eval: 1: !$ENV{TEST_NGINX_LOAD_MODULES}
--- main_config
    thread_pool chat threads=1 max_queue=1;
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
    location = /readyz { chat_readyz; }
    location = /t { return 200 "t"; }
--- init
# the server's start-up tasks (indexes) fill the small pool a moment
for (1 .. 100) {
    my $r = HTTP::Tiny->new(timeout => 10)->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/readyz");
    last if $r->{status} == 200;
    sleep 0.3;
}
ChatChats::setup();
my ($st, $b);
for (1 .. 60) {
    ($st, $b) = ChatChats::call(alice => POST => "/api/chats/private",
                                { userId => $ChatChats::Id{bob} });
    last if $st != 503;
    sleep 0.5;
}
my $chat = $b->{chat}{id} or die "POST /api/chats/private: $st";
my @ws = map { ChatRT::connect("alice") } 1 .. 20;
for my $i (1 .. 20) {
    ChatRT::send_event($ws[$i - 1], "send_message",
                       { chatId => $chat, tempId => "pool-$i", type => "text",
                         content => "pool $i" }, "p$i");
}
my (@acked, @refused, %codes);
for my $i (1 .. 20) {
    my $e = ChatRT::wait_for($ws[$i - 1], "ack", 60, "p$i");
    if ($e && $e->{event} eq "ack") {
        push @acked, "pool-$i";
    } else {
        push @refused, "pool-$i";
        $codes{$e ? ($e->{error}{code} // "-") . ":" . ($e->{status} // "-")
                  : "none"}++;
    }
}
close $_ for @ws;
sleep 1;    # the pool drained
my $out = ChatSIO::run("flood", chat => $chat, n => 20, prefix => "spool");
my %r = map { split /=/, $_, 2 } split / /, $out;
push @acked, grep { $_ ne "-" } split /,/, $r{acked} // "-";
my @srefused = grep { $_ ne "-" } split /,/, $r{refused} // "-";
push @refused, @srefused;
my $stored = main::stored(alice => $chat);
my @lost = grep { !$stored->{$_} } @acked;
my @leaked = grep { $stored->{$_} } @refused;
$main::Got = "ws:" . join(",", sort keys %codes)
    . " sio:" . ($r{codes} // "? $out")
    . " lost:" . scalar(@lost) . " leaked:" . scalar(@leaked)
    . " all:" . (@acked + @refused == 40 ? "answered" : "? $out");
--- response_body
ws:service_unavailable:503 sio:service_unavailable:503 lost:0 leaked:0 all:answered
--- error_log
thread pool "chat" queue overflow
--- no_error_log
[alert]
[emerg]
