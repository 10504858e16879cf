# Overload by time (chat_send_max_wait): with MongoDB slowed by a
# delaying proxy, a burst of 24 sends at a cold worker is let in (a burst
# at a fast store must be; its pace is not known yet), and while those
# are still in flight, the oldest past an eighth of the wait, 10 more are
# refused at once, 503 overloaded with Retry-After, nothing stored; the
# 24 are stored and answered 201, and a send once they drained is stored.
# (chat_send_max_pending stays at its 1000: the bound here is the time.)

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use DelayProxy;
use HTTP::Tiny;
use Time::HiRes qw(sleep);

our ($ProxyPid, $ProxyPort, $Got);

BEGIN {
    ($ProxyPid, $ProxyPort) = DelayProxy::start($ENV{TEST_NGINX_MONGO_PORT},
                                                0.5);
    $ENV{TEST_NGINX_MONGO_PORT} = $ProxyPort;
    ChatChats::init("698", "chat_send_max_wait 1s;");
}

END { DelayProxy::stop($ProxyPid) if $ProxyPid }

# not in the reload pass: one block
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a burst let in, a second one refused while the first waits for the store, the first stored, a later send stored
--- config
    location /api/ { chat_api; }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @first = ChatChats::burst_send(alice => $chat, "in", 24);
sleep 0.25;
# the metrics page counts them in flight
my $gauge = sub {
    my $page = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    return $page =~ /^chat_sends_in_flight (\d+)/m ? $1 : "none";
};
my $n = $gauge->();
push @r, "in_flight:" . ($n =~ /^\d+$/ && $n >= 1 && $n <= 24 ? "counted" : $n);
my @late = ChatChats::burst_answers(ChatChats::burst_send(alice => $chat,
                                                          "late", 10));
my @in = ChatChats::burst_answers(@first);
my %st;
$st{ $_->[0] }++ for @in;
push @r, "first:" . join(",", map { "$_=$st{$_}" } sort keys %st);
%st = ();
for (@late) {
    my $code = $_->[2] && $_->[2]{error} ? $_->[2]{error}{code} : "-";
    $st{ "$_->[0]/$code/" . ($_->[1] // "-") }++;
}
push @r, "late:" . join(",", map { "$_=$st{$_}" } sort keys %st);
my ($s, $b) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "after", type => "text",
      content => "after" });
push @r, "after:$s", "then_in_flight:" . $gauge->();
# what is stored: the 24 and the last, none of the 10
my (%stored, $after);
$after = 0;
for (;;) {
    my $page = ChatChats::api(alice => GET =>
        "/api/chats/$chat/messages?after=$after&limit=100")->{items};
    last unless @$page;
    $stored{ ($_->{tempId} // "") =~ s/-\d+$//r }++ for @$page;
    $after = $page->[-1]{seq};
}
push @r, "stored:" . join(",", map { "$_=$stored{$_}" } sort keys %stored);
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
in_flight:counted first:201=24 late:503/overloaded/1=10 after:201 then_in_flight:0 stored:after=1,in=24
--- timeout: 120
--- no_error_log
[error]
[alert]
[emerg]
