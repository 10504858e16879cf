# A message's sends to the sockets of a worker go in one system call
# (ws/ngx_http_chat_ws_batch.c, io_uring): every socket, plain or
# Socket.IO, on either worker, gets every message once and in order; a
# socket that stops reading has the rest queued when the kernel takes only
# part, and gets it all, whole and in order, when it reads again; past
# chat_ws_max_queue it is closed 1008 while the others get everything.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatWS;
use IO::Socket::INET;
use JSON::PP qw(decode_json);

our ($Got);

BEGIN {
    ChatChats::init("705");
    # a port of its own with reuseport: the kernel spreads the sockets
    # over both workers; small send buffers there, so that a socket that
    # does not read is full after a few frames (loopback's buffers grow
    # to megabytes)
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                  LocalPort => 0) or die;
    $ENV{TEST_NGINX_RT_PORT} = $s->sockport;
    close $s;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", ChatChats::http_config() . <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_RT_PORT reuseport sndbuf=8k;
        location /api/ { chat_api; }
        location /ws { chat_ws; }
        location /wsq { chat_ws; chat_ws_max_queue 64k; }
        location /wsb { chat_ws; chat_ws_max_queue 4m; }
        location /socket.io/ { chat_socketio; }
    }
_EOC_
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log || defined $block->error_log;
});

# a signed-in plain socket on the reuseport server
sub ws_for {
    my ($who, $path, %opt) = @_;
    my ($s, $status) = ChatWS::open_ws(($path // "/ws")
        . "?token=$ChatChats::Tok{$who}{accessToken}", [], %opt);
    die "websocket for $who: $status" unless $status == 101;
    ChatRT::wait_for($s, "authenticated", 5) or die "$who not signed in";
    return $s;
}

# a signed-in Socket.IO socket over the websocket transport
sub sio_for {
    my ($who) = @_;
    my ($s, $status) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    die "socket.io: $status" unless $status == 101;
    ChatWS::read_frame($s, 3);
    ChatWS::text($s, qq(40{"token":"$ChatChats::Tok{$who}{accessToken}"}));
    while (my $f = ChatWS::read_frame($s, 5)) {
        return $s if $f->{payload} =~ /^42\["authenticated"/;
    }
    die "socket.io: $who not signed in";
}

# the texts of a chat's new_message events on a socket, in arrival order,
# until $n of them or $quiet seconds of nothing; a close frame as "close:N"
sub texts {
    my ($s, $chat, $n, $quiet) = @_;
    my @t;
    while (@t < $n) {
        my $f = ChatWS::read_frame($s, $quiet) or last;
        if ($f->{opcode} == 8) {
            push @t, "close:" . unpack("n", $f->{payload} || "\0\0");
            last;
        }
        my $p = $f->{payload};
        my $e;
        if ($p =~ /^42\[/) {
            my $a = decode_json(substr $p, 2);
            $e = { event => $a->[0], data => $a->[1] };
        } elsif ($p =~ /^\{/) {
            $e = decode_json($p);
        } else {
            next;
        }
        next unless $e->{event} eq "new_message"
                    && $e->{data}{message}{chatId} eq $chat;
        push @t, $e->{data}{message}{content}{text};
    }
    return @t;
}

# "N" when @t is exactly @want, else what came
sub same {
    my ($t, $want) = @_;
    return scalar(@$want) if "@$t" eq "@$want";
    return "got " . scalar(@$t) . " (first wrong: "
        . (grep({ $t->[$_] ne $want->[$_] } 0 .. $#$want))[0] . ")";
}

my $said = 0;

sub say_in {
    my ($who, $chat, $text) = @_;
    $said++;
    ChatChats::api($who => POST => "/api/messages",
                   { chatId => $chat, tempId => "fb-$$-$said",
                     type => "text", content => $text });
}

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: 200 messages to 30 plain and 6 Socket.IO sockets over two workers: each gets all 200, once, in order
--- init
ChatChats::setup("dave", "erin");
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "batched", memberIds => [ $ChatChats::Id{bob},
                                        $ChatChats::Id{carol} ] })->{chat}{id};
my @plain = map { main::ws_for($_) } (("bob") x 15, ("carol") x 15);
my @sio = map { main::sio_for($_) } (("bob") x 3, ("carol") x 3);
my @want = map { "m$_" } 1 .. 200;
main::say_in(alice => $g, $_) for @want;
my (%plain, %sio);
$plain{ main::same([ main::texts($_, $g, 200, 5) ], \@want) }++ for @plain;
$sio{ main::same([ main::texts($_, $g, 200, 5) ], \@want) }++ for @sio;
# and nothing more: no message twice
my $more = 0;
$more += main::texts($_, $g, 1, 0.3) for @plain, @sio;
$ChatWS::Port = undef;
$main::Got = "plain:" . join(",", map { "$_=$plain{$_}" } sort keys %plain)
    . " sio:" . join(",", map { "$_=$sio{$_}" } sort keys %sio)
    . " more:$more";
--- response_body
plain:200=30 sio:200=6 more:0



=== TEST 2: a socket that stops reading while 2 MB of messages flow gets them all, whole and in order, when it reads again; the others get them meanwhile
--- init
ChatChats::setup("dave", "erin");
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
# each block has a sender of its own: its messages fit in one burst of
# the send budget (chat_send_rate) when blocks follow without a restart
my $g = ChatChats::api(dave => POST => "/api/chats/group",
    { name => "stalled", memberIds => [ $ChatChats::Id{bob},
                                        $ChatChats::Id{carol} ] })->{chat}{id};
# room for 2 MB queued: they are not closed as slow readers (TEST 3)
my @stalled = map { main::ws_for("bob", "/wsb") } 1 .. 4;
my @reading = map { main::ws_for("carol") } 1 .. 4;
# 4,000 characters of three bytes each: 12 KB a frame, 2 MB in all
my @want = map { sprintf("%04d", $_) . ("\x{20ac}" x 3996) } 1 .. 170;
my %reading;
for my $i (0 .. $#want) {
    main::say_in(dave => $g, $want[$i]);
    # the readers keep up; the stalled ones read nothing yet
    if ($i % 10 == 9) {
        for my $k (0 .. $#reading) {
            push @{ $reading{$k} }, main::texts($reading[$k], $g, 10, 5);
        }
    }
}
my %stalled;
$stalled{ main::same([ main::texts($_, $g, 170, 10) ], \@want) }++
    for @stalled;
my %r;
$r{ main::same($reading{$_}, \@want) }++ for keys %reading;
$ChatWS::Port = undef;
$main::Got = "stalled:" . join(",", map { "$_=$stalled{$_}" } sort keys %stalled)
    . " reading:" . join(",", map { "$_=$r{$_}" } sort keys %r);
--- response_body
stalled:170=4 reading:170=4



=== TEST 3: past chat_ws_max_queue a socket that does not read is closed 1008, once its queue is full; the socket that reads gets every message
--- init
ChatChats::setup("dave", "erin");
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
# a sender of its own: the others sent their share of messages already
my $g = ChatChats::api(carol => POST => "/api/chats/group",
    { name => "slow", memberIds => [ $ChatChats::Id{bob},
                                     $ChatChats::Id{erin} ] })->{chat}{id};
my $slow = main::ws_for("bob", "/wsq");
my $reader = main::ws_for("erin", "/wsq");
my @want = map { sprintf("%04d", $_) . ("\x{20ac}" x 3996) } 1 .. 170;
my @got;
for my $i (0 .. $#want) {
    main::say_in(carol => $g, $want[$i]);
    push @got, main::texts($reader, $g, 1, 5);
}
my @slow = main::texts($slow, $g, 171, 10);
$ChatWS::Port = undef;
$main::Got = "slow:" . (@slow && $slow[-1] =~ /^close:(\d+)/ ? "closed $1" : "open")
    . " " . (@slow - 1 < 170 ? "cut" : "all")
    . " reader:" . main::same(\@got, \@want);
--- response_body
slow:closed 1008 cut reader:170
--- error_log
closing a slow reader
--- no_error_log
[error]
[alert]
[emerg]
