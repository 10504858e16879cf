package ChatMongo;

# A minimal MongoDB client for seeding what HTTP would take too long to
# make (a chat of 100,000 messages): OP_MSG commands over one socket,
# with a BSON encoder of the few types the module stores.  Documents are
# array refs of key => value pairs, in order; values are typed with oid(),
# i64(), date(), or plain strings, numbers (int32), hashes/arrays.

use strict;
use warnings;

use IO::Socket::INET;

my $request_id = 0;

sub oid  { return bless \(my $s = shift), 'ChatMongo::OID' }
sub i64  { return bless \(my $s = shift), 'ChatMongo::I64' }
sub date { return bless \(my $s = shift), 'ChatMongo::Date' }
sub doc  { return bless [@_], 'ChatMongo::Doc' }

sub new {
    my ($class, %o) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$o{port}",
                                     Proto => 'tcp')
        or die "mongo connect: $!";
    return bless { sock => $sock, db => $o{db} // 'chat_test' }, $class;
}

sub _cstring { return $_[0] . "\0" }

sub _element {
    my ($key, $v) = @_;
    my $k = _cstring($key);
    my $r = ref $v;

    if ($r eq 'ChatMongo::OID') {
        return "\x07$k" . pack("H24", $$v);
    }
    if ($r eq 'ChatMongo::I64') {
        return "\x12$k" . pack("q<", $$v);
    }
    if ($r eq 'ChatMongo::Date') {
        return "\x09$k" . pack("q<", $$v);
    }
    if ($r eq 'ChatMongo::Doc') {
        return "\x03$k" . encode($v);
    }
    if ($r eq 'HASH') {
        return "\x03$k" . encode(doc(map { $_ => $v->{$_} } sort keys %$v));
    }
    if ($r eq 'ARRAY') {
        return "\x04$k" . encode(doc(map { $_ => $v->[$_] } 0 .. $#$v));
    }
    if ($r eq 'JSON::PP::Boolean') {
        return "\x08$k" . ($v ? "\x01" : "\x00");
    }
    if (!defined $v) {
        return "\x0A$k";
    }
    if ($v =~ /^-?\d{1,9}$/) {
        return "\x10$k" . pack("l<", $v);
    }

    my $s = $v;
    utf8::encode($s) if utf8::is_utf8($s);
    return "\x02$k" . pack("l<", length($s) + 1) . $s . "\0";
}

sub encode {
    my ($d) = @_;
    my @kv = @$d;
    my $body = "";
    while (@kv) {
        my ($k, $v) = splice @kv, 0, 2;
        $body .= _element($k, $v);
    }
    return pack("l<", length($body) + 5) . $body . "\0";
}

# the reply's top-level numbers and strings, enough to read ok, n, errmsg
sub _decode_top {
    my ($b) = @_;
    my %out;
    my $pos = 4;
    my $end = unpack("l<", $b) - 1;
    while ($pos < $end) {
        my $t = ord substr($b, $pos++, 1);
        my $z = index($b, "\0", $pos);
        my $k = substr($b, $pos, $z - $pos);
        $pos = $z + 1;
        if ($t == 0x01) { $out{$k} = unpack("d<", substr($b, $pos, 8)); $pos += 8 }
        elsif ($t == 0x10) { $out{$k} = unpack("l<", substr($b, $pos, 4)); $pos += 4 }
        elsif ($t == 0x12 || $t == 0x09 || $t == 0x11) { $out{$k} = unpack("q<", substr($b, $pos, 8)); $pos += 8 }
        elsif ($t == 0x02) {
            my $l = unpack("l<", substr($b, $pos, 4));
            $out{$k} = substr($b, $pos + 4, $l - 1);
            $pos += 4 + $l;
        }
        elsif ($t == 0x03 || $t == 0x04) {
            my $l = unpack("l<", substr($b, $pos, 4));
            $out{$k} = substr($b, $pos, $l);
            $pos += $l;
        }
        elsif ($t == 0x08) { $out{$k} = ord substr($b, $pos, 1); $pos += 1 }
        elsif ($t == 0x07) { $pos += 12 }
        elsif ($t == 0x0A) { $out{$k} = undef }
        else { last }
    }
    return \%out;
}

# runs a command (a doc()), $db added; dies unless ok
sub command {
    my ($self, $cmd) = @_;
    my $body = encode(doc(@$cmd, '$db' => $self->{db}));
    my $msg = pack("L<", 0) . "\0" . $body;
    my $id = ++$request_id;
    my $packet = pack("l<l<l<l<", 16 + length($msg), $id, 0, 2013) . $msg;

    my $sock = $self->{sock};
    print {$sock} $packet or die "mongo write: $!";

    my $head = _read($sock, 16);
    my ($len) = unpack("l<", $head);
    my $rest = _read($sock, $len - 16);
    my $reply = substr($rest, 5);
    my $r = _decode_top($reply);

    die "mongo: " . ($r->{errmsg} // "not ok")
        unless $r->{ok};
    die "mongo: write errors" if defined $r->{writeErrors};
    return $r;
}

sub _read {
    my ($sock, $n) = @_;
    my $buf = "";
    while (length($buf) < $n) {
        my $got = sysread($sock, $buf, $n - length($buf), length($buf));
        die "mongo read: " . ($! || "closed") unless $got;
    }
    return $buf;
}

# inserts array refs of pairs, in batches
sub insert {
    my ($self, $coll, $docs, $batch) = @_;
    $batch //= 1000;
    for (my $i = 0; $i < @$docs; $i += $batch) {
        my $last = $i + $batch - 1;
        $last = $#$docs if $last > $#$docs;
        my $r = $self->command(doc(insert => $coll,
            documents => [ map { doc(@$_) } @$docs[$i .. $last] ],
            ordered => JSON::PP::true()));
        die "mongo: inserted $r->{n} of " . ($last - $i + 1)
            unless $r->{n} == $last - $i + 1;
    }
}

# FerretDB's own count of the commands it ran since it started, by name
# (serverStatus's metrics.commands)
sub command_counts {
    my ($port) = @_;
    my $m = ChatMongo->new(port => $port, db => "admin");
    my $r = $m->command(doc(serverStatus => 1));
    my $cmds = _decode_top(_decode_top($r->{metrics})->{commands});
    my %n;
    for my $c (keys %$cmds) {
        $n{$c} = _decode_top($cmds->{$c})->{total} // 0;
    }
    close $m->{sock};
    return \%n;
}

1;
