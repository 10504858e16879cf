# Redis loses its data (FLUSHALL, as a restart without persistence or an
# eviction would leave it) or goes away for a while: nobody is signed out,
# no revocation is forgotten, reuse of a rotated-away refresh token is
# still caught, sockets go on, sends keep gap-free seq.  MongoDB's session
# documents are the record; Redis only caches them.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatAuth;
use ChatRT;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(sleep);

our ($Got, $Redis, %S, $Chat);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    ChatChats::init("651", "chat_otp_resend_delay 1s;");
}

*Tok = \%ChatChats::Tok;
our %Tok;

sub base { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}" }

sub redis {
    system("redis-cli", "-p", $Redis->port, @_) == 0 or die "redis-cli @_";
}

# -> status of GET /api/auth/sessions with an access token
sub access {
    my ($token) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->get(base() . "/api/auth/sessions",
        { headers => { Authorization => "Bearer $token" } });
    return $r->{status};
}

# -> (status, decoded answer) of a refresh
sub refresh {
    my ($token) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->post(base() . "/api/auth/refresh-token",
        { headers => { 'Content-Type' => 'application/json' },
          content => encode_json({ refreshToken => $token }) });
    return ($r->{status}, eval { decode_json($r->{content}) } // {});
}

sub code_of { $_[0]{error}{code} // "none" }

sub sid_of { $_[0]{refreshToken} =~ s/\..*//r }

# the sessions of this file: two per user, signed in for real
sub sign_in_all {
    return if %S;
    ChatChats::setup();
    for my $who (qw(alice bob carol)) {
        $S{"${who}1"} = $Tok{$who};
    }
    sleep 1.1;    # the resend delay of each number
    for my $who (qw(alice bob carol)) {
        $S{"${who}2"} = ChatAuth::sign_in($ChatChats::Twilio,
                                          $ChatChats::Phone{$who}, "${who}2");
    }
}

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

no_shuffle();
run_tests();

__DATA__

=== TEST 1: FLUSHALL: live sessions work, revoked ones stay out, reuse is still caught, sends go on gap-free
--- init
main::sign_in_all();
my @r;
# alice2 logs out
my ($st) = ChatChats::call(alice => GET => "/api/users/profile");
my $h = HTTP::Tiny->new;
$st = $h->post(main::base() . "/api/auth/logout", { headers => {
    Authorization => "Bearer $main::S{alice2}{accessToken}" } })->{status};
die "logout: $st" unless $st == 200;
# bob2's family: rotated once, then the old token comes back (reuse caught)
my ($s1, $b2) = main::refresh($main::S{bob2}{refreshToken});
die "bob2 refresh: $s1" unless $s1 == 200;
my ($s2, $e2) = main::refresh($main::S{bob2}{refreshToken});
die "bob2 reuse: $s2" unless main::code_of($e2) eq "refresh_token_reused";
# carol1 rotates once: its first token is rotated away, not yet reused
my ($s3, $c1) = main::refresh($main::S{carol1}{refreshToken});
die "carol1 refresh: $s3" unless $s3 == 200;
# a chat with three messages, and bob's socket open
$main::Chat = ChatChats::api(alice => POST => "/api/chats/private",
                             { userId => $ChatChats::Id{bob} })->{chat}{id};
for my $i (1 .. 3) {
    ChatChats::api(alice => POST => "/api/messages",
                   { chatId => $main::Chat, tempId => "rl-$i", type => "text",
                     content => "before $i" });
}
my $ws = ChatRT::connect("bob");
ChatRT::drain($ws, 0.3);

main::redis("FLUSHALL");

push @r, "alice1:" . main::access($main::S{alice1}{accessToken});
my ($s4, $a1) = main::refresh($main::S{alice1}{refreshToken});
push @r, "alice1-refresh:$s4";
push @r, "alice1-new:" . main::access($a1->{accessToken});
push @r, "alice2:" . main::access($main::S{alice2}{accessToken});
my ($s5, $e5) = main::refresh($main::S{alice2}{refreshToken});
push @r, "alice2-refresh:$s5:" . main::code_of($e5);
push @r, "bob2:" . main::access($b2->{accessToken});
my ($s6, $e6) = main::refresh($b2->{refreshToken});
push @r, "bob2-refresh:$s6:" . main::code_of($e6);
push @r, "bob1:" . main::access($main::S{bob1}{accessToken});
# carol1's rotated-away token after the flush: a reuse, which revokes
push @r, "carol1-access:" . main::access($c1->{accessToken});
my ($s7, $e7) = main::refresh($main::S{carol1}{refreshToken});
push @r, "carol1-reuse:$s7:" . main::code_of($e7);
push @r, "carol1-after:" . main::access($c1->{accessToken});
my ($s8, $e8) = main::refresh($c1->{refreshToken});
push @r, "carol1-refresh:$s8:" . main::code_of($e8);
push @r, "carol2:" . main::access($main::S{carol2}{accessToken});
# a socket signs in anew; sends go on from the stored seq
my $ws2 = ChatRT::connect("bob");
for my $i (4 .. 5) {
    my $m = ChatChats::api(alice => POST => "/api/messages",
                           { chatId => $main::Chat, tempId => "rl-$i",
                             type => "text", content => "after $i" });
    push @r, "sent:$m->{message}{seq}";
}
for my $s ($ws, $ws2) {
    push @r, "got:" . join ",", map { $_->{data}{message}{seq} }
        grep { $_->{event} eq "new_message" } ChatRT::drain($s, 1);
}
close $_ for $ws, $ws2;
$main::Got = join " ", @r;
--- response_body
alice1:200 alice1-refresh:200 alice1-new:200 alice2:401 alice2-refresh:401:invalid_refresh_token bob2:401 bob2-refresh:401:invalid_refresh_token bob1:200 carol1-access:200 carol1-reuse:401:refresh_token_reused carol1-after:401 carol1-refresh:401:invalid_refresh_token carol2:200 sent:4 sent:5 got:4,5 got:4,5
--- error_log
chat: refresh token reused, session
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: after a flush, 1,000 access checks of one session at once read it from MongoDB a few times at most
--- init
main::sign_in_all();
my $sid = main::sid_of($main::S{bob1});
main::redis("FLUSHALL");
my $req = "GET /api/auth/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
          . "Authorization: Bearer $main::S{bob1}{accessToken}\r\n\r\n";
my %status;
# in bursts of 40 connections at once (Test::Nginx gives a worker 64)
for my $burst (1 .. 25) {
    my @s;
    for (1 .. 40) {
        my $s = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}")
            or die "connect: $!";
        push @s, $s;
    }
    print $_ $req for @s;
    for my $s (@s) {
        my $line = <$s> // "none";
        my ($code) = $line =~ /^HTTP\/1\.1 (\d+)/;
        $status{$code // "none"}++;
        close $s;
    }
}
sleep 0.3;
open my $log, '<', $Test::Nginx::Util::ErrLogFile or die "error.log: $!";
my $reads = grep { /session \Q$sid\E not in redis, read from mongo/ } <$log>;
close $log;
$main::Got = join(",", map { "$_:$status{$_}" } sort keys %status)
             . " reads:" . ($reads >= 1 && $reads <= 3 ? "few" : $reads);
--- response_body
200:1000 reads:few



=== TEST 3: Redis stopped: 503 with Retry-After, never 401; back (empty), everything works without a new sign-in
--- init
main::sign_in_all();
my @r;
$main::Chat //= ChatChats::api(alice => POST => "/api/chats/private",
                               { userId => $ChatChats::Id{bob} })->{chat}{id};
my $before = ChatChats::api(bob => GET => "/api/chats/$main::Chat/messages")
             ->{items}[0]{seq} // 0;
my $ws = ChatRT::connect("bob");
ChatRT::drain($ws, 0.3);
$main::Redis->stop;
sleep 0.3;
my $h = HTTP::Tiny->new(timeout => 10);
my %seen;
for my $who (qw(alice1 bob1 carol2)) {
    my $r = $h->get(main::base() . "/api/auth/sessions", { headers => {
        Authorization => "Bearer $main::S{$who}{accessToken}" } });
    my $code = eval { JSON::PP::decode_json($r->{content})->{error}{code} }
               // $r->{content};
    $seen{"$r->{status}:$code:" . ($r->{headers}{'retry-after'} // "-")}++;
}
push @r, "away:" . join ",", sort keys %seen;
$main::Redis->start;
# the subscriber connection comes back: the socket is told to resync
my $rs = ChatRT::wait_for($ws, "resync", 15);
push @r, "resync:" . ($rs ? "yes" : "no");
# and the command connection (its own backoff)
my $st = 503;
for (1 .. 100) {
    $st = main::access($main::S{alice1}{accessToken});
    last if $st != 503;
    sleep 0.2;
}
push @r, "alice1:$st";
push @r, "bob1:" . main::access($main::S{bob1}{accessToken});
push @r, "alice2:" . main::access($main::S{alice2}{accessToken});
my $m = ChatChats::api(alice => POST => "/api/messages",
                       { chatId => $main::Chat, tempId => "rs-" . time,
                         type => "text", content => "back" });
push @r, "seq:" . ($m->{message}{seq} == $before + 1 ? "next" : "$before->$m->{message}{seq}");
my @e = ChatRT::drain($ws, 1);
push @r, "socket:" . join ",", grep { /^(new_message|session_revoked|close)$/ }
                               map { $_->{event} } @e;
close $ws;
$main::Got = join " ", @r;
--- response_body
away:503:service_unavailable:1 resync:yes alice1:200 bob1:200 alice2:401 seq:next socket:new_message
--- no_error_log
[alert]
[emerg]



=== TEST 4: two refreshes with the same token at once: one wins, the other is a reuse that revokes the session
--- init
main::sign_in_all();
my @r;
my @tok;
for my $round (0 .. 2) {
    sleep(1.1 * 2 ** $round) if $round;
    for my $who (qw(dave erin)) {
        push @tok, ChatAuth::sign_in($ChatChats::Twilio,
                                     $ChatChats::Phone{$who}, "$who$round");
    }
}
for my $t (@tok) {
    my $body = JSON::PP::encode_json({ refreshToken => $t->{refreshToken} });
    my @s = map {
        IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}")
            or die "connect: $!"
    } 1 .. 2;
    print $_ "POST /api/auth/refresh-token HTTP/1.1\r\nHost: x\r\n"
             . "Connection: close\r\nContent-Type: application/json\r\n"
             . "Content-Length: " . length($body) . "\r\n\r\n$body" for @s;
    my @out;
    for my $s (@s) {
        local $/;
        my $res = <$s> // "";
        my ($code) = $res =~ /^HTTP\/1\.1 (\d+)/;
        my ($err) = $res =~ /"code":"([a-z_]+)"/;
        push @out, ($code // "none") . ($err ? ":$err" : "");
    }
    push @r, join ",", sort @out;
}
$main::Got = join " ", @r;
--- response_body
200,401:refresh_token_reused 200,401:refresh_token_reused 200,401:refresh_token_reused 200,401:refresh_token_reused 200,401:refresh_token_reused 200,401:refresh_token_reused
--- no_error_log
[error]
[alert]
[emerg]
