package ChatWS;

# A raw WebSocket client for the tests: it sends any frame at all (bad
# ones too) and reads what the server answers frame by frame, so that a
# test can assert on close codes and on the exact bytes.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha1_base64);
use Time::HiRes ();
use Compress::Raw::Zlib;

our $Port;

sub port { $Port || $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
           || 1984 }

# open(path, extra headers (list of "Name: value"), options)
# returns ($socket, $status, \%headers, $raw_response)
sub open_ws {
    my ($path, $headers, %opt) = @_;
    $headers //= [];

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => port(),
                                  Proto => "tcp", Timeout => 5)
        or die "connect: $!";

    if ($opt{rcvbuf}) {
        setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(),
                   $opt{rcvbuf});
    }

    my $key = $opt{key} // encode_base64(join("", map { chr int rand 256 }
                                                   1 .. 16), "");
    my $req = "GET $path HTTP/1.1\r\nHost: localhost\r\n";
    $req .= "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        unless $opt{no_upgrade};
    $req .= "Sec-WebSocket-Key: $key\r\n" unless $opt{no_key};
    $req .= "Sec-WebSocket-Version: " . ($opt{version} // 13) . "\r\n";
    $req .= "$_\r\n" for @$headers;
    $req .= "\r\n";
    $req .= $opt{pipelined} if defined $opt{pipelined};

    syswrite($s, $req) == length $req or die "write: $!";

    my $resp = "";
    while ($resp !~ /\r\n\r\n/) {
        my $n = _read($s, \$resp, 1, 5);
        last unless $n;
    }

    my ($head, $rest) = split /\r\n\r\n/, $resp, 2;
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my %h;
    for my $line (split /\r\n/, $head) {
        next unless $line =~ /^([^:]+):\s*(.*)$/;
        $h{lc $1} = $2;
    }

    # a JSON error answer: read its body (Content-Length)
    if (($status // 0) != 101 && $h{"content-length"}) {
        $rest //= "";
        while (length $rest < $h{"content-length"}) {
            last unless _read($s, \$rest, $h{"content-length"} - length $rest,
                              5);
        }
    }

    ${*$s}{chat_ws_buf} = $rest // "";
    ${*$s}{chat_ws_inflate} = $opt{deflate_reader};

    return ($s, $status, \%h, $head, $rest);
}

sub accept_for {
    my $key = shift;
    my $a = sha1_base64($key . "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    return "$a=";
}

sub _read {
    my ($s, $buf, $max, $timeout) = @_;
    my $sel = IO::Select->new($s);
    return undef unless $sel->can_read($timeout);
    my $n = sysread($s, my $chunk, $max);
    return $n unless $n;
    $$buf .= $chunk;
    return $n;
}

# encode one client frame: masked unless mask => 0
sub frame {
    my (%f) = @_;
    my $payload = $f{payload} // "";
    my $fin = exists $f{fin} ? $f{fin} : 1;
    my $b0 = ($fin ? 0x80 : 0) | (($f{rsv} // 0) << 4) | $f{opcode};
    my $mask = exists $f{mask} ? $f{mask} : 1;
    my $len = length $payload;
    my $out = chr $b0;
    my $m = $mask ? 0x80 : 0;

    if ($len < 126) {
        $out .= chr($m | $len);
    } elsif ($len <= 0xffff) {
        $out .= chr($m | 126) . pack("n", $len);
    } else {
        $out .= chr($m | 127) . pack("Q>", $len);
    }

    if ($mask) {
        my $key = join "", map { chr int rand 256 } 1 .. 4;
        my $masked = $payload ^ (substr($key x (int($len / 4) + 1), 0, $len));
        $out .= $key . $masked;
    } else {
        $out .= $payload;
    }

    return $out;
}

sub send_raw {
    my ($s, $bytes) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
        return 0 unless defined $n && $n > 0;
        $off += $n;
    }
    return 1;
}

sub send_frame { my $s = shift; send_raw($s, frame(@_)) }

sub text  { my ($s, $t) = @_; send_frame($s, opcode => 1, payload => $t) }

sub close_frame {
    my ($s, $code, $reason) = @_;
    my $p = defined $code ? pack("n", $code) . ($reason // "") : "";
    send_frame($s, opcode => 8, payload => $p);
}

# the next server frame as { fin, rsv, opcode, payload }, or undef at EOF
# or after $timeout seconds
sub read_frame {
    my ($s, $timeout) = @_;
    $timeout //= 5;
    my $buf = \${*$s}{chat_ws_buf};
    $$buf //= "";
    my $deadline = Time::HiRes::time() + $timeout;

    for (;;) {
        if (length $$buf >= 2) {
            my ($b0, $b1) = unpack "CC", $$buf;
            my $len = $b1 & 0x7f;
            my $hlen = 2;
            if ($len == 126) {
                $hlen = 4;
                $len = length $$buf >= 4 ? unpack("n", substr $$buf, 2, 2)
                                         : undef;
            } elsif ($len == 127) {
                $hlen = 10;
                $len = length $$buf >= 10 ? unpack("Q>", substr $$buf, 2, 8)
                                          : undef;
            }
            $hlen += 4 if $b1 & 0x80;

            if (defined $len && length $$buf >= $hlen + $len) {
                my $payload = substr $$buf, $hlen, $len;
                substr($$buf, 0, $hlen + $len) = "";
                return { fin => $b0 >> 7, rsv => ($b0 >> 4) & 7,
                         opcode => $b0 & 0xf, payload => $payload,
                         masked => ($b1 >> 7) };
            }
        }

        my $left = $deadline - Time::HiRes::time();
        return undef if $left <= 0;
        my $n = _read($s, $buf, 65536, $left);
        return undef unless $n;
    }
}

# "text:hello", "close:1002", "pong:x", ... ; "eof" or "timeout" at the end
sub describe {
    my ($f, $inflater) = @_;
    my %name = (0 => "cont", 1 => "text", 2 => "binary", 8 => "close",
                9 => "ping", 10 => "pong");
    my $op = $name{$f->{opcode}} // "op$f->{opcode}";
    my $p = $f->{payload};

    if ($f->{rsv} & 4 && $inflater) {
        my $out;
        $inflater->inflate($p . "\x00\x00\xff\xff", $out);
        $p = "z:$out";
    }

    if ($op eq "close") {
        return "close" if length $p == 0;
        my $code = unpack "n", $p;
        return "close:$code";
    }

    $p = unpack("H*", $p) if $op eq "binary" && length $p <= 40;
    return "$op:" . (length $p > 40 ? length($p) . " bytes" : $p);
}

# every frame until the server closes the TCP connection
sub drain {
    my ($s, $timeout, $inflater) = @_;
    my @seen;
    my $t0 = Time::HiRes::time();
    for (;;) {
        my $f = read_frame($s, $timeout // 5);
        if (!$f) {
            my $waited = Time::HiRes::time() - $t0;
            push @seen, eof_or_timeout($s);
            last;
        }
        push @seen, describe($f, $inflater);
        # as a real client does: a close is answered with a close
        send_raw($s, frame(opcode => 8, payload => substr($f->{payload}, 0, 2)))
            if $f->{opcode} == 8;
    }
    return join " ", @seen;
}

sub eof_or_timeout {
    my $s = shift;
    my $sel = IO::Select->new($s);
    return "timeout" unless $sel->can_read(0);
    my $n = sysread($s, my $x, 1);
    return defined $n && $n == 0 ? "eof" : "reset";
}

sub inflater {
    my ($i) = Compress::Raw::Zlib::Inflate->new(-WindowBits => -15);
    return $i;
}

sub deflate_payload {
    my ($text) = @_;
    my ($d) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15,
                                                -AppendOutput => 1);
    my $out = "";
    $d->deflate($text, $out);
    $d->flush($out, Z_SYNC_FLUSH);
    $out =~ s/\x00\x00\xff\xff\z//;
    return $out;
}

1;
