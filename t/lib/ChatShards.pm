package ChatShards;

# Where chat_redis_shards places an id: ngx_murmur_hash2() of the id and
# of each shard's address as written ("127.0.0.1:<port>"), mixed by
# MurmurHash3's finalizer, the highest score wins (rendezvous hashing).
#
#   my ($shards, $conf) = ChatShards::start(3);
#                                       # three Redis servers of the test's
#                                       # own (ChatRedis), and the
#                                       # chat_redis_shards line naming them
#   ChatShards::shard_of($id, @ports)   # 1 .. @ports
#   ChatShards::holders([$main, @ports], "EXISTS", "'key'")
#                                       # "2": where the reply is true
#   ChatShards::of($id)                 # shard_of() and holders() over
#   ChatShards::held("EXISTS", "'key'") # chat_redis and start()'s shards

use strict;
use warnings;

use ChatRedis;

# $n Redis servers started (TEST_NGINX_SHARD1 .. n their ports), and the
# directives that make them the shards, reconnecting within a second
our @Started;      # the last start()'s servers, for of() and held()

sub start {
    my ($n) = @_;
    my @shards = map { ChatRedis->new->start } 1 .. $n;
    @Started = @shards;
    $ENV{"TEST_NGINX_SHARD$_"} = $shards[$_ - 1]->port for 1 .. $n;
    my $conf = "chat_redis_shards"
        . join("", map { " 127.0.0.1:\$TEST_NGINX_SHARD$_" } 1 .. $n)
        . ";\n    chat_redis_backoff_max 1s;";
    return (\@shards, $conf);
}

# 32 bits at a time
sub mul32 {
    my ($a, $b) = @_;
    return ($a * ($b & 0xffff) + ((($a * ($b >> 16)) & 0xffff) << 16))
           & 0xffffffff;
}

sub murmur2 {
    my @d = unpack "C*", $_[0];
    my $m = 0x5bd1e995;
    my $h = scalar @d;
    while (@d >= 4) {
        my $k = $d[0] | $d[1] << 8 | $d[2] << 16 | $d[3] << 24;
        splice @d, 0, 4;
        $k = mul32($k, $m);
        $k ^= $k >> 24;
        $k = mul32($k, $m);
        $h = mul32($h, $m) ^ $k;
    }
    if (@d) {
        $h ^= $d[2] << 16 if @d == 3;
        $h ^= $d[1] << 8 if @d >= 2;
        $h ^= $d[0];
        $h = mul32($h, $m);
    }
    $h ^= $h >> 13;
    $h = mul32($h, $m);
    $h ^= $h >> 15;
    return $h;
}

sub shard_of {
    my ($id, @ports) = @_;
    my $h = murmur2($id);
    my ($best, $shard) = (-1, 0);
    for my $i (1 .. @ports) {
        my $x = $h ^ murmur2("127.0.0.1:$ports[$i - 1]");
        $x ^= $x >> 16;
        $x = mul32($x, 0x85ebca6b);
        $x ^= $x >> 13;
        $x = mul32($x, 0xc2b2ae35);
        $x ^= $x >> 16;
        ($best, $shard) = ($x, $i) if $x > $best;
    }
    return $shard;
}

# a Redis command, its reply's lines
sub redis {
    my ($port, @cmd) = @_;
    my @out = `redis-cli -p $port @cmd`;
    chomp @out;
    return @out;
}

# the servers (0: chat_redis, then the shards) where the command answers
# something true, joined with ","
sub holders {
    my ($ports, @cmd) = @_;
    my @where;
    for my $i (0 .. $#$ports) {
        push @where, $i if (redis($ports->[$i], @cmd))[0];
    }
    return join ",", @where;
}

sub of {
    return shard_of($_[0], map { $_->port } @Started);
}

sub held {
    return holders([ $ENV{TEST_NGINX_REDIS_PORT},
                     map { $_->port } @Started ], @_);
}

1;
