package ChatChats;

# Shared by the chat and message suites: users signed in for real (a fake
# Twilio hands the codes over), an API client, and the dynamic block values
# (Test::Nginx reads every block before running any, so a block's request
# is set from --- init once the ids exist).

use strict;
use warnings;

use Test::Nginx::Socket ();
use ChatTest ();
use ChatAuth;
use FakeHTTP;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);

our $Twilio;
our (%Tok, %Id, %Phone);

# $extra: more http{} directives for this suite
sub init {
    my ($prefix, $extra) = @_;
    $extra //= "";

    $Twilio = FakeHTTP->new;
    $Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
    $ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;
    $ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

    my $run = $$ % 10000;
    %Phone = map { $_->[0] => sprintf("+1628%s%04d", $prefix,
                                      ($run + $_->[1]) % 10000) }
             [alice => 0], [bob => 1], [carol => 2], [dave => 3], [erin => 4];

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        $block->set_value("http_config", http_config() . q{
    chat_group_max_size 4;
} . "    $extra\n") unless defined $block->http_config;

        $block->set_value("config", "location /api/ { chat_api; }")
            unless defined $block->config;
        $block->set_value("request", "GET /placeholder")
            unless defined $block->request;
    });
}

# the suite's http{} with the fake Twilio that signs the users in
sub http_config {
    return ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
};
}

# the suite's http{} with the store behind DelayProxy::slow_store()
sub slow_http_config {
    my $c = http_config();
    $c =~ s/\$TEST_NGINX_MONGO_PORT/\$TEST_NGINX_SLOW_MONGO_PORT/;
    return $c;
}

# a counter or gauge without labels on the metrics page (/metrics)
sub metric {
    my ($name) = @_;
    my $page = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    return $page =~ /^\Q$name\E(?:\{\})? (\d+)/m
           ? $1 : die "no $name on the metrics page";
}

# @more: users beyond alice, bob and carol (dave, erin)
sub setup {
    my @more = @_;
    return if %Tok;
    for my $who (qw(alice bob carol), @more) {
        $Tok{$who} = ChatAuth::sign_in($Twilio, $Phone{$who}, $who);
        $Id{$who} = $Tok{$who}{user}{id};
    }
}

# -> (status, decoded body)
sub call {
    my ($who, $method, $path, $data) = @_;
    my $r = HTTP::Tiny->new->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => 'application/json',
                       Authorization => "Bearer $Tok{$who}{accessToken}" },
          (defined $data ? (content => encode_json($data)) : ()) });
    my $body = eval { decode_json($r->{content}) } // $r->{content};
    return ($r->{status}, $body);
}

sub api {
    my ($status, $body) = call(@_);
    die "$_[1] $_[2]: $status " . (ref $body ? encode_json($body) : $body)
        unless $status =~ /^2/;
    return $body;
}

# n POSTs /api/messages written at once on n connections (tempIds
# "$prefix-1" ...): the connections, to read with burst_answers()
sub burst_send {
    my ($who, $chat, $prefix, $n) = @_;
    my @s;
    for my $i (1 .. $n) {
        my $json = encode_json({ chatId => $chat, tempId => "$prefix-$i",
                                 type => "text", content => "$prefix $i" });
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                      PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                      Proto => "tcp", Timeout => 60)
            or die "connect: $!";
        my $req = "POST /api/messages HTTP/1.1\r\nHost: localhost\r\n"
            . "Authorization: Bearer $Tok{$who}{accessToken}\r\n"
            . "Content-Type: application/json\r\nConnection: close\r\n"
            . "Content-Length: " . length($json) . "\r\n\r\n$json";
        syswrite($s, $req) == length $req or die "write: $!";
        push @s, $s;
    }
    return @s;
}

# each answer: [status, Retry-After, body]
sub burst_answers {
    my @out;
    for my $s (@_) {
        my $resp = do { local $/; <$s> } // "";
        my ($status) = $resp =~ m{^HTTP/1\.1 (\d+)};
        my ($retry) = $resp =~ m{\r\nRetry-After: *(\S+)\r\n}i;
        my ($body) = $resp =~ m{\r\n\r\n(.*)\z}s;
        push @out, [$status // 0, $retry, eval { decode_json($body) }];
    }
    return @out;
}

sub burst { return burst_answers(burst_send(@_)) }

sub dyn {
    my ($block, %v) = @_;
    $block->set_value("request", $v{request}) if defined $v{request};
    $block->set_value("more_headers", "Content-Type: application/json\n"
                      . "Authorization: Bearer $Tok{$v{as}}{accessToken}")
        if defined $v{as};
    for my $k (qw(response_body_like error_code response_body)) {
        $block->set_value($k, $v{$k}) if defined $v{$k};
    }
}

1;
