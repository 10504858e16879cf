# A user's budgets across workers and instances, kept in Redis (issue 21):
# the sends of a user, every way (REST, forward, both socket codecs), take
# tokens of one bucket (chat_send_rate); the bytes a user uploads count
# against a daily quota (chat_upload_daily_bytes).  Over either: 429
# rate_limited with Retry-After on REST, on sockets the error the
# per-socket limits give (status 429, retryAfter).  Small limits keep the
# file fast.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatSIO;
use ChatWS;
use HTTP::Tiny;
use JSON::PP qw(encode_json decode_json);
use IO::Socket::INET;
use IO::Select;
use File::Temp qw(tempdir);
use File::Find ();
use Time::HiRes qw(sleep time);

our ($Got, $Chat);

BEGIN {
    ChatChats::init("687");
    # a port of its own with reuseport: the kernel spreads the sockets
    # over both workers
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                  LocalPort => 0) or die;
    $ENV{TEST_NGINX_RT_PORT} = $s->sockport;
    close $s;
}

# outside the server root, which Test::Nginx removes between blocks
our $Root = tempdir(CLEANUP => 1);
chmod 0777, $Root;
$ENV{TEST_NGINX_MEDIA_ROOT} = $Root;

add_block_preprocessor(sub {
    my $block = shift;
    my $rate = $block->send_rate // "1r/s burst=10";
    $block->set_value("http_config", ChatTest::chat_http_config() . <<_EOC_)
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:\$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
    chat_send_rate $rate;
    chat_upload_daily_bytes 3000;
    chat_media_root \$TEST_NGINX_MEDIA_ROOT;

    server {
        listen 127.0.0.1:\$TEST_NGINX_RT_PORT reuseport;
        location /ws { chat_ws; chat_ws_send_rate off; }
    }
_EOC_
        unless defined $block->http_config;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; client_max_body_size 10m; }
    location /ws { chat_ws; chat_ws_send_rate off; }
    location /socket.io/ { chat_socketio; chat_ws_send_rate off; }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t") unless defined $block->request;
    $block->set_value("response_body_filters", sub { "$main::Got\n" })
        unless defined $block->must_die;
    $block->set_value("timeout", 30);
});

# a private chat of $who with $with, made once
sub main::chat {
    my ($who, $with) = @_;
    ChatChats::setup();
    return ChatChats::api($who => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{$with} })->{chat}{id};
}

# a REST call: (status, decoded body, Retry-After)
sub main::rest {
    my ($who, $method, $path, $body, $ctype) = @_;
    my $json = !defined $ctype;
    my $r = HTTP::Tiny->new(timeout => 10)->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => $ctype // 'application/json',
                       Authorization =>
                           "Bearer $ChatChats::Tok{$who}{accessToken}" },
          (defined $body ? (content => $json ? encode_json($body) : $body)
                         : ()) });
    my $j = eval { decode_json($r->{content}) } // {};
    return ($r->{status}, $j, $r->{headers}{'retry-after'});
}

sub main::post_msg {
    my ($who, $chat, $tag) = @_;
    return main::rest($who, POST => "/api/messages",
                      { chatId => $chat, tempId => "$tag-$$", type => "text",
                        content => $tag });
}

# a 429 as a REST client sees it
sub main::refused {
    my ($status, $j, $retry) = @_;
    return $status == 429 && defined $retry && $retry >= 1
           && $j->{error}{code} eq "rate_limited"
           && length $j->{error}{message} ? "429" : "$status";
}

# the messages of $who in $chat, stored
sub main::stored {
    my ($chat, $who) = @_;
    my (undef, $j) = main::rest($who, GET => "/api/chats/$chat/messages");
    return scalar grep { $_->{senderId} eq $ChatChats::Id{$who} }
                       @{ $j->{items} || [] };
}

# a PDF of 1,200 bytes exactly (three pass the quota of 3,000, whatever
# the seed), unique by its seed
sub main::pdf {
    my ($seed) = @_;
    my $pdf = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n"
              . "<< /Root 1 0 R >>\n%%EOF\n% $seed $$\n";
    return $pdf . ("%" x (1199 - length $pdf)) . "\n";
}

# every worker of the latest start has its Redis connection: until then
# an upload is not counted (Redis away: uploads go on), which a test of
# the quota must not mistake for the quota
sub main::redis_ready {
    my $deadline = time + 10;
    while (time < $deadline) {
        open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log"
            or die;
        my (%want, %up);
        while (<$log>) {
            %want = () if /start worker processes/;
            $want{$1} = 1 if /start worker process (\d+)/;
            $up{$1} = 1 if /\[info\] (\d+)#\d+: chat redis: connected/;
        }
        return if %want && !grep { !$up{$_} } keys %want;
        sleep 0.05;
    }
    die "the workers have no Redis";
}

# a counter of the metrics page, summed over its lines with these labels
sub main::metric {
    my ($name, $labels) = @_;
    my $page = HTTP::Tiny->new(timeout => 5)->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    my $n = 0;
    $n += $1 while $page =~ /^\Q$name$labels\E (\d+)$/mg;
    return $n;
}

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: one user's sockets on both workers and REST share one budget: the burst is stored, the excess refused (429 rate_limited, retryAfter; REST Retry-After), another user unaffected; after a pause sending works
--- init
my $chat = main::chat("alice", "bob");
# sockets until two workers hold them, three in all
my (%by, @s);
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
for (1 .. 20) {
    my $s = ChatRT::connect("alice");
    my $w = ChatRT::worker_of("alice");
    if (!$by{$w}++ || (@s < 3 && keys %by > 1)) {
        push @s, $s;
    }
    last if @s >= 3 && keys %by > 1;
}
$ChatWS::Port = undef;
my $n = 0;
my %ids;
for my $s (@s) {
    for (1 .. 5) {
        $n++;
        push @{ $ids{$s} }, $n;
        ChatRT::send_event($s, "send_message",
            { chatId => $chat, tempId => "ws$n-$$", type => "text",
              content => "m$n" }, $n);
    }
}
my ($ok, $no, @odd) = (0, 0);
for my $s (@s) {
    my %want = map { $_ => 1 } @{ $ids{$s} };
    while (keys %want) {
        my $e = ChatRT::next_event($s, 5) or last;
        next unless defined $e->{id} && delete $want{$e->{id}};
        if ($e->{event} eq "ack") {
            $ok++;
        } elsif ($e->{event} eq "error" && $e->{status} == 429
                 && $e->{error}{code} eq "rate_limited"
                 && $e->{error}{retryAfter} >= 1) {
            $no++;
        } else {
            push @odd, $e->{id};
        }
    }
}
# REST right after: the same budget, spent (a token may come back)
my @rest = map { main::refused(main::post_msg("alice", $chat, "rest$_")) } 1 .. 3;
my $rest_ok = grep { $_ eq "201" } @rest;
my $limited = grep { $_ eq "429" } @rest;
my $stored = main::stored($chat, "alice");
my ($bob) = main::post_msg("bob", $chat, "bob");
sleep 1.2;
my ($later) = main::post_msg("alice", $chat, "later");
$main::Got = "workers:" . (keys %by > 1 ? "2" : "1") . " sockets:" . @s
    . " ran:" . ($ok >= 10 && $ok < 15 ? "burst" : $ok)
    . " refused:" . ($ok + $no == 15 ? "rest" : $no) . " odd:@odd"
    . " rest:" . ($limited >= 2 && $limited + $rest_ok == 3 ? "429" : "@rest")
    . " stored:" . ($stored == $ok + $rest_ok ? "same" : "$stored/$ok+$rest_ok")
    . " bob:$bob later:$later counted:"
    . (main::metric("chat_user_limited_total", '{limit="send_rate"}')
       == $no + $limited ? "yes" : "no");
--- response_body
workers:2 sockets:3 ran:burst refused:rest odd: rest:429 stored:same bob:201 later:201 counted:yes
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: Socket.IO's send_message and a forward count too: over the budget, the ack is rate_limited (status 429, retryAfter), the forward 429 with Retry-After, nothing stored
--- send_rate: 1r/m burst=5
--- init
my $chat = main::chat("carol", "alice");
my $other = main::chat("carol", "bob");
my (@st, $first);
for (1 .. 6) {
    my ($st, $j) = main::post_msg("carol", $chat, "c$_");
    $first //= $j->{message}{id};
    push @st, $st;
}
my $sent = grep { $_ == 201 } @st;
my $s = ChatSIO::open_ws($ChatChats::Tok{carol}{accessToken});
my $c = ChatSIO::next_event($s, 5);
die "no connect" unless $c && $c->{event} eq "connect";
ChatSIO::emit($s, "send_message", { chatId => $chat, tempId => "sio-$$",
                                    type => "text", content => "sio" }, 7);
my $ack;
while (my $e = ChatSIO::next_event($s, 5)) {
    if ($e->{event} eq "ack" && $e->{id} == 7) {
        $ack = $e;
        last;
    }
}
my $err = $ack && $ack->{data}{error};
my $sio = $err && $err->{code} eq "rate_limited" && $err->{retryAfter} >= 1
          && $ack->{data}{status} == 429 ? "limited" : "no";
my $fw = main::refused(main::rest("carol",
    POST => "/api/messages/$first/forward", { chatIds => [ $other ] }));
$main::Got = "sent:$sent last:$st[5] sio:$sio forward:$fw"
    . " stored:" . main::stored($chat, "carol") . "+"
    . main::stored($other, "carol");
--- response_body
sent:5 last:429 sio:limited forward:429 stored:5+0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: uploads past the user's daily bytes: 429 rate_limited with Retry-After until the day's end, nothing stored; another user still uploads; a declared length past the quota is refused before its body (no 100 Continue)
--- init
ChatChats::setup();
main::redis_ready();
my @a = map {
    my ($s, $j, $r) = main::rest("alice", POST => "/api/media",
                                 main::pdf("a$_"), "application/pdf");
    $s == 201 ? "201" : main::refused($s, $j, $r)
        . ($s == 429 && $r <= 86400 ? "" : ":$r");
} 1 .. 3;
my ($b) = main::rest("bob", POST => "/api/media", main::pdf("b"),
                     "application/pdf");
# a declared length past the quota is refused before its body: a client
# that waits for 100 Continue gets the 429 instead, having sent nothing
my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                              PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                              Timeout => 5) or die;
print $c "POST /api/media HTTP/1.1\r\nHost: t\r\n"
    . "Authorization: Bearer $ChatChats::Tok{alice}{accessToken}\r\n"
    . "Content-Type: application/pdf\r\nContent-Length: 1200\r\n"
    . "Expect: 100-continue\r\n\r\n";
my $head = "";
my $sel = IO::Select->new($c);
while ($head !~ /\r\n\r\n/ && $sel->can_read(5)) {
    sysread($c, $head, 4096, length $head) or last;
}
my ($early) = $head =~ m{^HTTP/1\.1 (\d+)};
# a chunked body, its length known once read: counted then, refused
my $chunks = [ main::pdf("a4") ];
my $ch = HTTP::Tiny->new(timeout => 10)->request(POST =>
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/media",
    { headers => { 'Content-Type' => 'application/pdf',
                   Authorization =>
                       "Bearer $ChatChats::Tok{alice}{accessToken}" },
      content => sub { shift @$chunks } });
my $files = 0;
File::Find::find(sub { $files++ if -f $_ }, $main::Root);
$main::Got = "alice:@a chunked:$ch->{status} bob:$b early:" . ($early // "none")
    . ($head =~ /^Retry-After: \d+/mi ? " retry" : "")
    . " files:$files counted:"
    . main::metric("chat_user_limited_total", '{limit="upload_daily_bytes"}');
--- response_body
alice:201 201 429 chunked:429 bob:201 early:429 retry files:3 counted:3
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: a send rate that is not Nr/s or Nr/m is refused at start
--- http_config
    chat_send_rate 10x;
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_send_rate" directive has an invalid rate/
