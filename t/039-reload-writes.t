# A reload (or a graceful stop) while writes wait on a slow MongoDB: the
# old worker stays until they are over, what follows their commit
# included, and their clients get their answers.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
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

END { DelayProxy::stop($ProxyPid) if $ProxyPid }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 60);
});

master_on();
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
