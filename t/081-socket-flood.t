# Limits on sockets (issue 21): every event of a socket takes a token of
# its own bucket (chat_ws_event_rate), a send_message one more of its
# user's bucket in the worker (chat_ws_send_rate).  An event over a rate
# is not run and is answered rate_limited (status 429, retryAfter); a
# socket refused more than close= events within 10 s is closed with 1008
# (Socket.IO: DISCONNECT first).  Small limits keep the file fast.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatSIO;
use ChatWS;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

BEGIN { ChatChats::init("681") }

our $Got;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_event_rate 10r/s burst=6 close=10;
        chat_ws_send_rate 1r/s burst=2;
    }
    location /socket.io/ {
        chat_socketio;
        chat_ws_event_rate 10r/s burst=6 close=10;
    }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 30);
});

# alice's chat with bob, made once
sub main::chat {
    ChatChats::setup();
    $main::Chat //= ChatChats::api(alice => POST => "/api/chats/private",
                                   { userId => $ChatChats::Id{bob} })
                    ->{chat}{id};
    return $main::Chat;
}

# the answers of the events of ids @ids: id -> event (ack, error, close)
sub main::answers {
    my ($s, @ids) = @_;
    my %want = map { $_ => 1 } @ids;
    my %got;
    while (keys %want) {
        my $e = ChatRT::next_event($s, 5) or last;
        if ($e->{event} eq "close") {
            $got{close} = $e;
            last;
        }
        next unless defined $e->{id} && $want{$e->{id}};
        delete $want{$e->{id}};
        $got{$e->{id}} = $e;
    }
    return \%got;
}

# "n acked, m refused (429 rate_limited retryAfter>=1), k other"
sub main::tally {
    my ($got, @ids) = @_;
    my ($ok, $no, @odd) = (0, 0);
    for my $id (@ids) {
        my $e = $got->{$id};
        if ($e && $e->{event} eq "ack") {
            $ok++;
        } elsif ($e && $e->{event} eq "error" && $e->{status} == 429
                 && $e->{error}{code} eq "rate_limited"
                 && $e->{error}{retryAfter} >= 1
                 && length $e->{error}{message}) {
            $no++;
        } else {
            push @odd, $id;
        }
    }
    return ($ok, $no, @odd);
}

# bob's join_chat answered at once (another user is not slowed)
sub main::bob_prompt {
    my ($b, $chat, $id) = @_;
    my $t0 = time;
    ChatRT::send_event($b, "join_chat", { chatId => $chat }, $id);
    my $e = ChatRT::wait_for($b, "ack", 5, $id);
    return $e && $e->{event} eq "ack" && time - $t0 < 2 ? "prompt" : "slow";
}

# a counter of the metrics page, summed over its lines
sub main::metric {
    my ($name) = @_;
    my $page = HTTP::Tiny->new(timeout => 5)->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    my $n = 0;
    $n += $1 while $page =~ /^\Q$name\E(?:\{[^}]*\})? (\d+)$/mg;
    return $n;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a socket over its event rate: the burst runs, the excess is refused rate_limited with retryAfter; after a pause it may send again; not closed
--- init
my $chat = main::chat();
my $s = ChatRT::connect("alice");
ChatRT::send_event($s, "join_chat", { chatId => $chat }, $_) for 1 .. 9;
my $got = main::answers($s, 1 .. 9);
my ($ok, $no, @odd) = main::tally($got, 1 .. 9);
sleep 1.1;
ChatRT::send_event($s, "join_chat", { chatId => $chat }, 10);
my $again = ChatRT::wait_for($s, "ack", 5, 10);
$main::Got = "ran:" . ($ok >= 6 && $ok < 9 ? "burst" : $ok)
    . " refused:" . ($ok + $no == 9 ? "rest" : $no)
    . " odd:@odd closed:" . ($got->{close} ? "yes" : "no")
    . " again:" . ($again ? $again->{event} : "none");
--- response_body
ran:burst refused:rest odd: closed:no again:ack



=== TEST 2: send_message has a stricter bucket per user across the user's sockets: sends beyond it refused and not stored; bob meanwhile answered promptly
--- init
my $chat = main::chat();
my @a = map { ChatRT::connect("alice") } 1 .. 2;
my $b = ChatRT::connect("bob");
my $tag = "fl" . int(time * 1000) % 1000000;
for my $i (1 .. 3) {
    for my $k (0, 1) {
        ChatRT::send_event($a[$k], "send_message",
                           { chatId => $chat, tempId => "$tag-$k-$i",
                             type => "text", content => "m $i" }, "$k$i");
    }
}
my $prompt = main::bob_prompt($b, $chat, "b1");
my (%acked, %refused, @odd);
for my $k (0, 1) {
    my @ids = map { "$k$_" } 1 .. 3;
    my $got = main::answers($a[$k], @ids);
    for my $id (@ids) {
        my $e = $got->{$id};
        my $temp = "$tag-" . substr($id, 0, 1) . "-" . substr($id, 1);
        if ($e && $e->{event} eq "ack") {
            $acked{$temp} = 1;
        } elsif ($e && $e->{event} eq "error"
                 && $e->{error}{code} eq "rate_limited") {
            $refused{$temp} = 1;
        } else {
            push @odd, $id;
        }
    }
}
my $page = ChatChats::api(alice => GET =>
                          "/api/chats/$chat/messages?limit=100")->{items};
my %stored = map { ($_->{tempId} // "") => 1 } @$page;
$main::Got = "acked:" . (keys(%acked) >= 2 && keys(%acked) <= 3
                         ? "2-3" : scalar keys %acked)
    . " refused:" . (keys(%acked) + keys(%refused) == 6 ? "rest" : "?")
    . " odd:@odd"
    . " lost:" . scalar(grep { !$stored{$_} } keys %acked)
    . " leaked:" . scalar(grep { $stored{$_} } keys %refused)
    . " bob:$prompt";
--- response_body
acked:2-3 refused:rest odd: lost:0 leaked:0 bob:prompt



=== TEST 3: a socket that keeps flooding is closed with 1008; bob's socket is answered promptly meanwhile and after
--- init
my $chat = main::chat();
my $b = ChatRT::connect("bob");
my $s = ChatRT::connect("alice");
ChatRT::send_event($s, "join_chat", { chatId => $chat }, $_) for 1 .. 40;
my $prompt = main::bob_prompt($b, $chat, "b1");
my ($close, $limited);
while (my $e = ChatRT::next_event($s, 5)) {
    $limited++ if $e->{event} eq "error"
                  && $e->{error}{code} eq "rate_limited";
    if ($e->{event} eq "close") {
        $close = $e->{code};
        last;
    }
}
$main::Got = "close:" . ($close // "none")
    . " limited:" . ($limited && $limited <= 11 ? "some" : $limited // 0)
    . " bob:$prompt " . main::bob_prompt($b, $chat, "b2")
    . " counted:" . (main::metric("chat_socket_flood_closed_total") >= 1
                     && main::metric("chat_socket_events_refused_total")
                        >= 11 ? "yes" : "no");
--- response_body
close:1008 limited:some bob:prompt prompt counted:yes



=== TEST 4: Socket.IO: the excess is acked with the error rate_limited (status 429, retryAfter); a flood gets DISCONNECT then close 1008
--- init
my $chat = main::chat();
my $s = ChatSIO::open_ws($ChatChats::Tok{alice}{accessToken});
my $c = ChatSIO::next_event($s, 5);
die "no connect" unless $c && $c->{event} eq "connect";
ChatSIO::emit($s, "join_chat", { chatId => $chat }, $_) for 1 .. 9;
my ($ok, $no, %seen, @odd) = (0, 0);
while (keys %seen < 9) {
    my $e = ChatSIO::next_event($s, 5) or last;
    next unless $e->{event} eq "ack";
    $seen{$e->{id}} = 1;
    my $err = $e->{data}{error};
    if (!$err) {
        $ok++;
    } elsif ($err->{code} eq "rate_limited" && $err->{retryAfter} >= 1
             && $e->{data}{status} == 429) {
        $no++;
    } else {
        push @odd, $e->{id};
    }
}
sleep 1.1;
ChatSIO::emit($s, "join_chat", { chatId => $chat }, $_) for 10 .. 50;
my @end;
while (my $e = ChatSIO::next_event($s, 5)) {
    next if $e->{event} eq "ack";
    push @end, $e->{event} . ($e->{code} ? ":$e->{code}" : "");
    last if $e->{event} eq "close";
}
$main::Got = "ran:" . ($ok >= 6 && $ok < 9 ? "burst" : $ok)
    . " refused:" . ($ok + $no == 9 ? "rest" : $no) . " odd:@odd"
    . " end:@end";
--- response_body
ran:burst refused:rest odd: end:disconnect close:1008



=== TEST 5: a rate that is not Nr/s or Nr/m is refused at start
--- config
    location /ws { chat_ws; chat_ws_event_rate 10x; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_ws_event_rate" directive has an invalid rate/
