# compose.yaml, checked without Docker (no engine runs here, and no
# "docker compose config"): parsed by a YAML parser (python3-yaml) and
# held to what compose requires of it (services with an image or a build,
# commands as lists, ports, mounts of files that exist, dependencies on
# services that exist, with the health check or the one-shot exit their
# condition waits for); its commands the tested ones: NGINX's the
# Dockerfile's, Redis's options those tools/services starts Redis with
# (but where it listens and keeps its files), MongoDB's replica set the
# one its init starts and the module's URI names; and the configuration
# the nginx service runs (the shipped nginx.conf.d with the two address
# files mounted over) passes "nginx -t", the names of the compose services
# resolved to 127.0.0.1 here as Docker's network resolves them there.

use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use File::Basename qw(basename);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use JSON::PP qw(decode_json);
use Text::ParseWords qw(shellwords);

my $root = $ENV{TEST_NGINX_ROOT} || getcwd();
my $binary = $ENV{TEST_NGINX_BINARY} || "/usr/sbin/nginx";
my $modules = $ENV{TEST_NGINX_LOAD_MODULES};

sub read_file {
    open my $fh, "<", $_[0] or die "$_[0]: $!";
    local $/;
    return <$fh>;
}

sub write_file {
    open my $fh, ">", $_[0] or die "$_[0]: $!";
    print $fh $_[1];
    close $fh or die "$_[0]: $!";
}

# the YAML as JSON, by python3-yaml (tools/bootstrap installs it)
my $json = `/usr/bin/python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)' "$root/compose.yaml" 2>&1`;
is $?, 0, "compose.yaml parses as YAML" or diag $json;
my $c = eval { decode_json($json) } // {};
my $s = $c->{services} // {};

# --- what compose requires ---

my %top = map { $_ => 1 } qw(name services volumes networks configs secrets);
is_deeply [grep { !$top{$_} && !/^x-/ } sort keys %$c], [],
    "only keys compose knows at the top";
ok scalar(keys %$s), "services";
is_deeply [sort keys %$s], [qw(mongo mongo-init nginx redis)],
    "nginx, MongoDB with its init, Redis";

my %known = map { $_ => 1 } qw(image build command ports volumes depends_on
                               healthcheck restart environment);
my %restart = map { $_ => 1 } ("no", "always", "on-failure",
                               "unless-stopped");
my %condition = map { $_ => 1 } qw(service_started service_healthy
                                   service_completed_successfully);

for my $name (sort keys %$s) {
    my $v = $s->{$name};
    is_deeply [grep { !$known{$_} } sort keys %$v], [],
        "$name: only keys compose knows";
    ok !!(defined $v->{image}) != !!(defined $v->{build}),
        "$name: an image or a build";

    if (my $b = $v->{build}) {
        my $ctx = ref $b ? $b->{context} : $b;
        my $file = (ref $b && $b->{dockerfile}) || "Dockerfile";
        ok -f "$root/$ctx/$file", "$name: its build's $file exists";
    } else {
        like $v->{image} // "", qr{^[a-z0-9./-]+:[\w.-]+$},
            "$name: an image with a tag";
    }

    ok ref $v->{command} eq "ARRAY"
       && !grep({ ref $_ || !defined $_ } @{ $v->{command} }),
        "$name: a command, as a list of strings";

    for my $p (@{ $v->{ports} // [] }) {
        like $p, qr/^(\d+\.\d+\.\d+\.\d+:)?\d+:\d+$/, "$name: port $p";
    }

    for my $m (@{ $v->{volumes} // [] }) {
        my ($src, $dst, $mode) = split /:/, $m;
        like $dst // "", qr{^/}, "$name: mount $m: an absolute target";
        ok !defined $mode || $mode =~ /^(ro|rw)$/, "$name: mount $m: mode";
        if ($src =~ m{^\.?/}) {
            ok -e "$root/$src", "$name: mount $m: $src exists";
        } else {
            ok exists $c->{volumes}{$src}, "$name: volume $src declared";
        }
    }

    ok $restart{$v->{restart} // "no"}, "$name: restart policy";

    if (my $h = $v->{healthcheck}) {
        like $h->{test}[0] // "", qr/^CMD(-SHELL)?$/, "$name: health check";
    }

    my $deps = $v->{depends_on} // {};
    for my $d (sort keys %$deps) {
        my $cond = $deps->{$d}{condition} // "service_started";
        ok $s->{$d}, "$name: depends on $d, a service";
        ok $condition{$cond}, "$name: $d: condition $cond";
        ok $s->{$d}{healthcheck}, "$name: $d has the health check it waits"
            if $cond eq "service_healthy";
        is $s->{$d}{restart} // "no", "no", "$name: $d runs once"
            if $cond eq "service_completed_successfully";
    }
}

# --- the commands are the tested ones ---

# NGINX: the Dockerfile's command and port
my $docker = read_file("$root/Dockerfile");
my ($cmd) = $docker =~ /^CMD (\[.*\])\s*$/m;
is_deeply $s->{nginx}{command}, decode_json($cmd // "[]"),
    "nginx: the Dockerfile's command";
my ($expose) = $docker =~ /^EXPOSE (\d+)/m;
# the image's, not the build stage's
my ($copy) = (reverse($docker =~ m{^COPY nginx\.conf\.d (\S+)}mg))[0];
like $copy // "", qr{^/}, "the image has nginx.conf.d at $copy";
my $listen = read_file("$root/nginx.conf.d/compose-listen.conf");
my ($lport) = $listen =~ /^listen (?:[\d.]+:)?(\d+);/m;
is $lport, $expose, "nginx listens on the port the Dockerfile exposes";
ok grep({ /:\Q$expose\E$/ } @{ $s->{nginx}{ports} // [] }),
    "and compose publishes it";

# the mounts replace the two address files the shipped nginx.conf includes
my %mounts;
for my $m (@{ $s->{nginx}{volumes} // [] }) {
    my ($src, $dst) = split /:/, $m;
    next unless $src =~ m{^\./nginx\.conf\.d/};
    $mounts{$dst} = $src;
}
is_deeply [sort keys %mounts],
    ["$copy/dev-backends.conf", "$copy/dev-listen.conf"],
    "nginx: only the two address files are mounted over";

# Redis: the options of tools/services but where it listens and its files
my $services = read_file("$root/tools/services");
$services =~ s/\\\n\s*/ /g;
my ($line) = $services =~ /^\s*(redis-server .*)$/m;
my @want = shellwords($line // "");
shift @want;
my %place = map { $_ => 1 } qw(--port --bind --dir --daemonize --pidfile
                               --logfile);
my @opts;
while (@want) {
    my ($k, $v) = splice @want, 0, 2;
    push @opts, $k, $v unless $place{$k};
}
ok scalar(@opts), "tools/services starts Redis with options: @opts";
my @got = @{ $s->{redis}{command} // [] };
is shift(@got), "redis-server", "redis: redis-server";
my %got = @got;
for (my $i = 0; $i < @opts; $i += 2) {
    is $got{ $opts[$i] }, $opts[$i + 1],
        "redis: $opts[$i] '$opts[$i + 1]' as tools/services";
}
ok !exists $got{"--port"}, "redis: its default port";

# MongoDB: one replica set everywhere
my $backends = read_file("$root/nginx.conf.d/compose-backends.conf");
my ($rhost, $rport) = $backends =~ /^chat_redis (\S+):(\d+);/m;
is "$rhost:$rport", "redis:6379", "the module's Redis: the redis service";
my ($uri) = $backends =~ /^chat_mongo_uri "([^"]+)";/m;
my ($mhost, $set) = ($uri // "") =~ m{^mongodb://([^/]+)/\?replicaSet=(\w+)$};
is $mhost, "mongo:27017", "the module's MongoDB: the mongo service";
my @mongod = @{ $s->{mongo}{command} // [] };
my ($rs) = map { $mongod[$_ + 1] } grep { $mongod[$_] eq "--replSet" }
           0 .. $#mongod;
is $mongod[0], "mongod", "mongo: mongod";
is $rs, $set, "mongo: the replica set $set of the URI";
my $init = join " ", @{ $s->{"mongo-init"}{command} // [] };
like $init, qr/rs\.initiate\(\{_id: "\Q$set\E",/, "mongo-init: starts $set";
like $init, qr/host: "\Q$mhost\E"/,
    "mongo-init: its member as the module reaches it";
like $init, qr/--host \Q$mhost\E/, "mongo-init: asks the mongo service";

# --- the configuration the nginx service runs passes nginx -t ---

my $prefix = tempdir("ngx-chat-073.XXXXXX", TMPDIR => 1, CLEANUP => 1);
mkdir "$prefix/$_" or die "mkdir $_: $!" for qw(run logs);
opendir my $dh, "$root/nginx.conf.d" or die "nginx.conf.d: $!";
for my $f (grep { -f "$root/nginx.conf.d/$_" } readdir $dh) {
    copy("$root/nginx.conf.d/$f", "$prefix/$f") or die "copy $f: $!";
}
closedir $dh;

# as the Dockerfile's image: its own secrets, made as it is built
like $docker, qr{^RUN chat-dev-secrets /etc/nginx/chat\b}m,
    "the image makes its development secrets";
system("$root/tools/dev-secrets", $prefix) == 0 or die "dev-secrets";
# which the mounts then change
for my $dst (keys %mounts) {
    my $to = "$prefix/" . basename($dst);
    copy("$root/$mounts{$dst}", $to) or die "copy $mounts{$dst}: $!";
}
# Docker's network resolves the services' names; here they are local
my $b = read_file("$prefix/dev-backends.conf");
$b =~ s/\b(redis|mongo):(\d+)/127.0.0.1:$2/g;
write_file("$prefix/dev-backends.conf", $b);

my $conf = read_file("$prefix/nginx.conf");
$conf =~ s/^load_module .*\n//m;
$conf = "load_module $modules;\n$conf" if $modules;
write_file("$prefix/nginx.conf", $conf);

my @args = @{ $s->{nginx}{command} // [] };
shift @args;
s{^/etc/nginx/chat/?$}{$prefix/} for @args;
# nginx -t returns without freeing its configuration's pools: under
# AddressSanitizer that is NGINX's own leak at exit, not this test's point
local $ENV{ASAN_OPTIONS} = join ":", grep { defined && length }
                           $ENV{ASAN_OPTIONS}, "detect_leaks=0";
my $out = `"$binary" -t @args 2>&1`;
is $?, 0, "nginx -t on the nginx service's configuration" or diag $out;
like $out, qr/test is successful/, "nginx -t: successful";

done_testing();
