# A reload (or a graceful stop) while writes wait on a slow MongoDB: the
# old worker stays until they are over, what follows their commit
# included, and their clients get their answers.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use DelayProxy;
use IO::Socket::INET;
use JSON::PP qw(encode_json);
use Time::HiRes qw(sleep);

our ($ProxyPid, $ProxyPort, $Got);

BEGIN {
    ($ProxyPid, $ProxyPort) = DelayProxy::start($ENV{TEST_NGINX_MONGO_PORT},
                                                0.3);
    $ENV{TEST_NGINX_MONGO_PORT} = $ProxyPort;
    ChatChats::init("639");
}

# a raw HTTP/1.1 request left in flight; its status is read later
sub raw_request {
    my ($who, $method, $uri, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Proto => "tcp", Timeout => 5)
        or die "connect: $!";
    my $json = defined $body ? JSON::PP::encode_json($body) : "";
    my $req = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $ChatChats::Tok{$who}{accessToken}\r\n"
        . "Connection: close\r\n"
        . (length $json ? "Content-Type: application/json\r\n"
                          . "Content-Length: " . length($json) . "\r\n"
                        : "")
        . "\r\n$json";
    syswrite($s, $req) == length $req or die "write: $!";
    return $s;
}

sub status_of {
    my $s = shift;
    local $/;
    my $resp = <$s> // "";
    return $resp =~ m{^HTTP/1\.1 (\d+)} ? $1 : "none";
}

sub hup {
    open my $fh, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
    my $pid = <$fh>;
    chomp $pid;
    kill "HUP", $pid;
}

END { DelayProxy::stop($ProxyPid) if $ProxyPid }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 60);
});

master_on();
# not in the reload pass (TEST_NGINX_USE_HUP): it reloads the server itself, inside its blocks
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "not in the reload pass";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a send in flight through a reload: answered, stored, in the chat list
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @socks;
for my $i (1 .. 3) {
    my $json = JSON::PP::encode_json({ chatId => $chat, tempId => "hup-$i",
                             type => "text", content => "through $i" });
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Proto => "tcp", Timeout => 5)
        or die "connect: $!";
    my $req = "POST /api/messages HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $ChatChats::Tok{alice}{accessToken}\r\n"
        . "Content-Type: application/json\r\nConnection: close\r\n"
        . "Content-Length: " . length($json) . "\r\n\r\n$json";
    syswrite($s, $req) == length $req or die "write: $!";
    push @socks, $s;
}
sleep 0.2;
open my $fh, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
my $pid = <$fh>;
chomp $pid;
kill "HUP", $pid;
my @r;
for my $s (@socks) {
    local $/;
    my $resp = <$s> // "";
    push @r, $resp =~ m{^HTTP/1\.1 (\d+)} ? $1 : "none";
}
sleep 1;
my $list = ChatChats::api(bob => GET => "/api/chats")->{items};
my ($row) = grep { $_->{id} eq $chat } @$list;
my $items = ChatChats::api(bob => GET => "/api/chats/$chat/messages")->{items};
my @hup = grep { $_->{tempId} =~ /^hup-/ } @$items;
push @r, "stored:" . scalar(@hup),
    "last:" . (($row->{lastMessage}{tempId} // "none") eq $items->[0]{tempId}
               ? "newest" : "other");
$main::Got = "@r";
--- response_body
201 201 201 stored:3 last:newest
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: reads in flight through a reload (no write holds the worker): answered
--- main_config
thread_pool chat threads=1;
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
# no write of this block still holds the worker (it does for a second)
sleep 1.5;
my @socks = map {
    (main::raw_request(alice => GET => "/api/chats"),
     main::raw_request(bob => GET => "/api/chats/$chat/messages"))
} 1 .. 4;
sleep 0.1;
main::hup();
$main::Got = join " ", map { main::status_of($_) } @socks;
--- response_body
200 200 200 200 200 200 200 200
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: writes and reads in flight through reloads: all answered, every write delivered live or resynced
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $ws = ChatRT::connect("bob");
ChatRT::send_event($ws, "join_chat", { chatId => $chat }, "j");
ChatRT::wait_for($ws, "ack", 5, "j") or die "bob did not join";
my @socks;
for my $round (1 .. 2) {
    push @socks,
        (map { main::raw_request(alice => POST => "/api/messages",
                                 { chatId => $chat, tempId => "hw-$round-$_",
                                   type => "text", content => "w $_" }) }
         1 .. 3),
        main::raw_request(alice => GET => "/api/chats"),
        main::raw_request(bob => GET => "/api/chats/$chat/messages");
    sleep 0.15;
    main::hup();
    sleep 0.3;
}
my %st;
$st{ main::status_of($_) =~ /^2/ ? "2xx" : "other" }++ for @socks;
my %got;
while (my $e = ChatRT::next_event($ws, 3)) {
    last if $e->{event} eq "close";
    $got{ $e->{data}{message}{tempId} // "" } = 1
        if $e->{event} eq "new_message";
}
close $ws;
# what the live socket missed, a client's resync on a new worker brings
my $s = ChatRT::connect("bob");
ChatRT::send_event($s, "join_chat", { chatId => $chat }, "j2");
ChatRT::wait_for($s, "ack", 5, "j2");
ChatRT::send_event($s, "sync", { chats => { $chat => 0 } }, "s");
while (my $e = ChatRT::next_event($s, 5)) {
    $got{ $e->{data}{message}{tempId} // "" } = 1
        if $e->{event} eq "new_message";
    last if $e->{event} eq "synced";
}
$main::Got = "2xx:" . ($st{"2xx"} // 0) . " other:" . ($st{other} // 0)
    . " delivered:" . scalar(grep { /^hw-/ } keys %got);
--- response_body
2xx:10 other:0 delivered:6
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: a fast stop (TERM) while a send waits on MongoDB: the client is told 503, not cut off
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $s = main::raw_request(alice => POST => "/api/messages",
                          { chatId => $chat, tempId => "term-1",
                            type => "text", content => "cut short" });
sleep 0.2;
open my $fh, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
my $master = <$fh>;
chomp $master;
# the worker only: the master starts another, which serves this block
my @workers = grep { /^\d+$/ } map { s/\s+//gr } `ps -o pid= --ppid $master`;
kill "TERM", @workers;
my $status = main::status_of($s);
# the new worker's start-up (indexes) goes through the slow proxy, which
# stops when the file ends: let it finish first
sleep 6;
$main::Got = "$status workers:" . scalar(@workers);
--- response_body
503 workers:1
--- error_log
sends in flight when the worker exited
--- no_error_log
[alert]
[emerg]
