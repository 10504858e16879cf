package Test::Nginx::Chat;

# Test your own configuration the way our suite tests the module: users
# signed in through the real OTP flow, the REST API as a user, the
# WebSocket and Socket.IO endpoints with events sent and expected.  A thin,
# documented face over the suite's helpers (ChatAuth, ChatChats, ChatRT,
# ChatSIO, FakeHTTP); see "Testing your configuration" in the README.
#
#   use Test::Nginx::Socket 'no_plan';
#   use Test::Nginx::Chat;
#
#   chat_fake_twilio();
#   chat_blocks(http_config => chat_backends_config() . chat_twilio_config(),
#               config => "location /api/ { chat_api; }\n"
#                         . "location /ws { chat_ws; }\n");
#   no_shuffle();
#   run_tests();
#
#   __DATA__
#
#   === TEST 1: bob gets alice's message
#   --- chat
#   chat_sign_in(alice => chat_phone(1));
#   chat_sign_in(bob => chat_phone(2));
#   my $ws = chat_ws("bob");
#   ...
#   $ws->expect("new_message")->{data}{message}{content}{text};
#   --- response_body
#   hello

use strict;
use warnings;

use Exporter 'import';
use Test::Nginx::Socket ();
use ChatTest ();
use ChatAuth ();
use ChatChats ();
use ChatRT ();
use ChatSIO ();
use ChatWS ();
use FakeHTTP ();

our @EXPORT = qw(chat_blocks chat_backends_config chat_fake_twilio
                 chat_twilio_config chat_phone chat_sign_in chat_user
                 chat_api chat_ws chat_sio);

our $Twilio;

sub _port {
    $ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;
}

# chat_blocks(http_config => ..., config => ...): the defaults of every
# block; a block's own sections win.  A "--- chat" section is Perl code
# run (in package main) once the server is up; what it returns is the
# block's response body, for --- response_body and the like.  Every block
# checks its error log for [error], [alert] and [emerg] unless it says
# what to expect there.
sub chat_blocks {
    my (%def) = @_;

    # Test::Nginx runs the last preprocessor added first: ours, then these
    ChatTest->import;

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        for my $k (qw(http_config config)) {
            $block->set_value($k, $def{$k})
                if defined $def{$k} && !defined $block->$k;
        }

        my $src = $block->chat;
        return unless defined $src;

        my $code = eval "package main; no strict 'vars'; sub { $src\n}"
            or die "--- chat of " . $block->name . ": $@";

        # a request that only proves the server is up
        $block->set_value("config", ($block->config // "")
                          . "\n    location = /.chat-test { return 204; }\n");
        $block->set_value("request", "GET /.chat-test")
            unless defined $block->request;
        $block->set_value("error_code", 204)
            unless defined $block->error_code;
        $block->set_value("response_body_filters", sub {
            my $out = eval { $code->() };
            return "died: $@" if $@;
            $out //= "";
            return $out =~ /\n\z/ ? $out : "$out\n";
        });
    });
}

# the chat_redis, chat_mongo_uri and JWT lines for the Redis and MongoDB
# that tools/test (or tools/services) started
sub chat_backends_config { ChatTest::chat_http_config() }

# a fake Twilio that accepts every message and keeps what it got; its
# port is $TEST_NGINX_FAKE_TWILIO_PORT
sub chat_fake_twilio {
    $Twilio = FakeHTTP->new;
    $Twilio->set_reply(201, '{"sid":"SM00000000000000000000000000000000",'
                            . '"status":"queued"}');
    $ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;
    return $Twilio;
}

# the http{} lines that send one-time codes to the fake Twilio
sub chat_twilio_config {
    my (%opt) = @_;
    my $c = q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
};
    $c .= "    chat_twilio_whatsapp_from $opt{whatsapp_from};\n"
        if $opt{whatsapp_from};
    return $c;
}

# a number of its own for this run: MongoDB keeps users from run to run,
# Redis the numbers' resend delays while it runs
sub chat_phone {
    my ($n) = @_;
    return sprintf "+1628741%04d", ($$ + ($n // 0) * 97) % 10000;
}

# the code that the log provider (chat_sms_provider log) wrote last for a
# number in this server's error log
sub _code_from_log {
    my ($phone) = @_;
    my $code;
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return 'none';
    while (<$fh>) {
        $code = $1 if /chat (?:sms|whatsapp): to \Q$phone\E: (\d{6}) is /;
    }
    close $fh;
    return $code // 'none';
}

# chat_sign_in($name, $phone, via => "twilio" | "log", device => ...,
# channel => "sms" | "whatsapp"): send-otp, the code as Twilio got it or
# as the error log shows it, verify-otp.  -> the user: {id, phone,
# accessToken, refreshToken, user, isNewUser}, kept under $name
sub chat_sign_in {
    my ($name, $phone, %opt) = @_;
    _port();

    my $via = $opt{via} // ($Twilio ? "twilio" : "log");
    my $source = $via eq "log" ? \&_code_from_log
               : $Twilio // die "chat_sign_in: no chat_fake_twilio()";

    my $answer = ChatAuth::sign_in($source, $phone, $opt{device} // $name,
                                   channel => $opt{channel});

    $answer->{id} = $answer->{user}{id};
    $answer->{phone} = $phone;
    $ChatChats::Tok{$name} = $answer;
    $ChatChats::Id{$name} = $answer->{id};

    return $answer;
}

# a signed-in user, by name
sub chat_user {
    my ($name) = @_;
    return $ChatChats::Tok{$name} // die "chat_user: $name is not signed in";
}

# chat_api($name, $method, $path, $data) as that user -> ($status, $body),
# the body decoded when it is JSON
sub chat_api {
    my ($name, $method, $path, $data) = @_;
    _port();
    chat_user($name);
    return ChatChats::call($name, $method, $path, $data);
}

# the user's WebSocket on the plain JSON endpoint (path => "/ws"),
# authenticated
sub chat_ws {
    my ($name, %opt) = @_;
    _port();
    chat_user($name);
    my $s = ChatRT::connect($name, path => $opt{path} // "/ws");
    return bless { kind => "ws", s => $s, name => $name },
                 "Test::Nginx::Chat::Socket";
}

# the user's Socket.IO connection (path => "/socket.io/"), websocket
# transport, authenticated
sub chat_sio {
    my ($name, %opt) = @_;
    _port();
    my $s = ChatSIO::open_ws(chat_user($name)->{accessToken},
                             path => $opt{path});
    my $sock = bless { kind => "sio", s => $s, name => $name },
                     "Test::Nginx::Chat::Socket";
    $sock->expect("authenticated", 5)
        or die "socket.io: $name not authenticated";
    return $sock;
}


package Test::Nginx::Chat::Socket;

# $sock->emit($event, $data, $id): $id asks for an answer (an "ack" or
# an "error" event with that id)
sub emit {
    my ($self, $event, $data, $id) = @_;
    return $self->{kind} eq "ws"
           ? ChatRT::send_event($self->{s}, $event, $data, $id)
           : ChatSIO::emit($self->{s}, $event, $data, $id);
}

# the next event as {event, data, id?}, or undef after $timeout seconds
sub next_event {
    my ($self, $timeout) = @_;
    return $self->{kind} eq "ws" ? ChatRT::next_event($self->{s}, $timeout)
                                 : ChatSIO::next_event($self->{s}, $timeout);
}

# the first event named $event, skipping others; undef after $timeout
# seconds (3) without it
sub expect {
    my ($self, $event, $timeout) = @_;
    my $until = Time::HiRes::time() + ($timeout // 3);
    for (;;) {
        my $left = $until - Time::HiRes::time();
        return undef if $left <= 0;
        my $e = $self->next_event($left) or return undef;
        return $e if $e->{event} eq $event;
    }
}

# the answer to the event sent with $id: an "ack" or an "error"
sub answer {
    my ($self, $id, $timeout) = @_;
    my $until = Time::HiRes::time() + ($timeout // 3);
    for (;;) {
        my $left = $until - Time::HiRes::time();
        return undef if $left <= 0;
        my $e = $self->next_event($left) or return undef;
        return $e if defined $e->{id} && $e->{id} eq $id
                     && $e->{event} =~ /^(?:ack|error)$/;
    }
}

# every event until $quiet seconds (0.5) pass without one
sub events {
    my ($self, $quiet) = @_;
    my @e;
    while (my $e = $self->next_event($quiet // 0.5)) {
        push @e, $e;
    }
    return @e;
}

sub close {
    my ($self) = @_;
    ChatWS::close_frame($self->{s}, 1000) if $self->{s};
    CORE::close(delete $self->{s}) if $self->{s};
}

use Time::HiRes ();

1;
