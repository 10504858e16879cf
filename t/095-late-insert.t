# A send whose insert reaches the store after a reader filled its number
# with a tombstone: its number is taken (13 s, a proxy in front of
# FerretDB holds that one insert) while the message above it was stored
# more than 10 s before, so the hole is old and the reader fills it.  The
# late insert is refused at the number and takes the next free one: the
# sender is answered 201 with that number, the other member's socket gets
# it once, and the chat reads tombstone, the message above, the late one.

use Test::Nginx::Socket;

# the held insert must outlive the hole's age, within the store's timeout
BEGIN {
    # registered first, so run last (Test::Nginx runs the newest first):
    # after the suite's own have written http_config
    add_block_preprocessor(sub {
        my $block = shift;
        my $conf = $block->http_config;
        $conf =~ s{(chat_mongo_uri "mongodb://[^"]*/)";}
                  {$1?socketTimeoutMS=60000";};
        $block->set_value("http_config", $conf);
    });
}

use ChatTest;
use ChatChats;
use ChatRT;
use DelayProxy;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes ();

our ($ProxyPid, $ProxyPort, $Got, $Late);

BEGIN {
    $Late = "late-insert-$$";
    ($ProxyPid, $ProxyPort) = DelayProxy::start($ENV{TEST_NGINX_MONGO_PORT},
                                                0, hold => $Late,
                                                hold_for => 13);
    $ENV{TEST_NGINX_MONGO_PORT} = $ProxyPort;
    ChatChats::init("695");
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

# a POST left in flight; its answer is read later
sub main::post_later {
    my ($who, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Proto => "tcp", Timeout => 60)
        or die "connect: $!";
    my $json = JSON::PP::encode_json($body);
    my $req = "POST /api/messages HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $ChatChats::Tok{$who}{accessToken}\r\n"
        . "Content-Type: application/json\r\nConnection: close\r\n"
        . "Content-Length: " . length($json) . "\r\n\r\n$json";
    syswrite($s, $req) == length $req or die "write: $!";
    return $s;
}

sub main::answer_of {
    my $s = shift;
    local $/;
    my $resp = <$s> // "";
    my ($status) = $resp =~ m{^HTTP/1\.1 (\d+)};
    my ($body) = $resp =~ m{\r\n\r\n(.*)\z}s;
    return ($status // 0, eval { JSON::PP::decode_json($body) });
}

# a single block: nothing for the reload pass to add
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an insert held past its hole's age: the reader's tombstone takes the number, the send takes the next, answered 201, pushed once
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $bob = ChatRT::connect("bob");
ChatRT::wait_for($bob, "authenticated", 5);
ChatRT::send_event($bob, "join_chat", { chatId => $chat });
my $first = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "first-$$", type => "text",
      content => "first" })->{message}{seq};
my $late = main::post_later(alice => { chatId => $chat,
    tempId => $main::Late, type => "text", content => "late" });
Time::HiRes::sleep(1);
my $above = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "above-$$", type => "text",
      content => "above" })->{message}{seq};
# the hole below "above" is old after 10 s: the reader fills it and
# reads past it
Time::HiRes::sleep(10.5);
my $read = ChatChats::api(bob => GET =>
    "/api/chats/$chat/messages?after=$first&limit=10");
my @r;
push @r, "hole:" . ($above == $first + 2 ? "ok" : "$first,$above");
push @r, "filled:" . join(",", map { ($_->{content}{text} // $_->{type})
                                     . "/+" . ($_->{seq} - $first) }
                               @{ $read->{items} });
my ($status, $body) = main::answer_of($late);
my $seq = $body->{message}{seq} // "none";
push @r, "late:$status/" . ($seq eq $above + 1 ? "next" : $seq);
my $all = ChatChats::api(bob => GET =>
    "/api/chats/$chat/messages?after=$first&limit=10");
push @r, "chat:" . join(",", map { ($_->{content}{text} // $_->{type}) }
                             @{ $all->{items} });
my @got = map { $_->{data}{message}{content}{text} }
          grep { $_->{event} eq "new_message"
                 && $_->{data}{message}{seq} > $first } ChatRT::drain($bob, 1);
push @r, "pushed:" . join(",", @got);
$main::Got = "@r";
--- response_body
hole:ok filled:above/+2 late:201/next chat:tombstone,above,late pushed:above,late
--- no_error_log
[error]
[alert]
[emerg]
