# Hardening against impersonation (issue 21): names, bios and group
# texts refuse the invisible and text-direction characters that make one
# name look like another (a joiner is let by where a script or an emoji
# sequence needs it); an avatar is an upload of my own or an https URL
# of a host the site allows, and another user's media reads as unknown as
# no media at all.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;
use File::Temp ();
use ChatPng;

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    our $MediaRoot = File::Temp::tempdir(CLEANUP => 1);
    chmod 0777, $MediaRoot;
    ChatChats::init("778", "chat_media_root $MediaRoot;\n"
                    . "    chat_avatar_url_host cdn.example.com;");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 30);
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

# a PNG of its own bytes, uploaded by $who: its media id
sub main::upload_png {
    my ($who, $seed) = @_;
    my $png = ChatPng::png(2, 2, $seed);
    my $r = HTTP::Tiny->new->request(POST =>
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/media",
        { headers => { 'Content-Type' => 'image/png',
                       Authorization => "Bearer $ChatChats::Tok{$who}{accessToken}" },
          content => $png });
    die "upload: $r->{status} $r->{content}" unless $r->{status} == 201;
    return decode_json($r->{content})->{media}{id};
}

# "status code field" of a call, or "status ok"
sub main::try {
    my ($status, $b) = ChatChats::call(@_);
    return $status =~ /^2/ ? "$status ok"
        : "$status $b->{error}{code} " . ($b->{error}{details}{field} // "-");
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: names and bios: bidi overrides and isolates, marks, zero-width spaces, a joiner between Latin letters or at the end are refused (400, the field named, nothing changed); an emoji sequence and a Persian word keep their joiners
--- init
ChatChats::setup();
my @r;
my %cases = (
    "override"  => { name => "Ann\x{202E}nnA" },
    "isolate"   => { name => "\x{2066}Ann\x{2069}" },
    "zwsp"      => { name => "An\x{200B}n" },
    "rlm"       => { name => "Ann\x{200F}" },
    "bom"       => { name => "\x{FEFF}Ann" },
    "latin zwj" => { name => "An\x{200D}n" },
    "end zwnj"  => { name => "Ann\x{200C}" },
    "bio embed" => { bio => "hi \x{202A}there" },
);
for my $k (sort keys %cases) {
    push @r, "$k: " . main::try(alice => PUT => "/api/users/profile", $cases{$k});
}
my $me = ChatChats::api(alice => GET => "/api/users/profile")->{user};
push @r, "unchanged: " . (($me->{name} // "") =~ /[\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2066}-\x{2069}\x{FEFF}]/ ? "no" : "yes");
push @r, "emoji: " . main::try(alice => PUT => "/api/users/profile",
    { name => "Ann \x{1F469}\x{200D}\x{1F4BB}" });
push @r, "persian: " . main::try(alice => PUT => "/api/users/profile",
    { name => "\x{0645}\x{06CC}\x{200C}\x{062E}\x{0648}\x{0627}\x{0645}" });
$me = ChatChats::api(alice => GET => "/api/users/profile")->{user};
push @r, "stored: " . ($me->{name} eq "\x{0645}\x{06CC}\x{200C}\x{062E}\x{0648}\x{0627}\x{0645}" ? "as sent" : $me->{name});
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body
bio embed: 400 invalid_request bio
bom: 400 invalid_request name
end zwnj: 400 invalid_request name
isolate: 400 invalid_request name
latin zwj: 400 invalid_request name
override: 400 invalid_request name
rlm: 400 invalid_request name
zwsp: 400 invalid_request name
unchanged: yes
emoji: 200 ok
persian: 200 ok
stored: as sent



=== TEST 2: group names and descriptions: the same characters refused on create and on edit
--- init
ChatChats::setup();
my @r;
push @r, "create name: " . main::try(alice => POST => "/api/chats/group",
    { name => "Admins\x{202E}", memberIds => [ $main::Id{bob} ] });
push @r, "create description: " . main::try(alice => POST => "/api/chats/group",
    { name => "Team", description => "a\x{200B}b", memberIds => [ $main::Id{bob} ] });
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "Team", memberIds => [ $main::Id{bob} ] })->{chat}{id};
push @r, "edit name: " . main::try(alice => PUT => "/api/chats/$g", { name => "Te\x{2067}am" });
push @r, "edit description: " . main::try(alice => PUT => "/api/chats/$g", { description => "x\x{FEFF}" });
push @r, "edit fine: " . main::try(alice => PUT => "/api/chats/$g", { name => "Team \x{2713}" });
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body
create name: 400 invalid_request name
create description: 400 invalid_request description
edit name: 400 invalid_request name
edit description: 400 invalid_request description
edit fine: 200 ok



=== TEST 3: an avatar is my own upload or an https URL of an allowed host; another user's media answers exactly as media that does not exist, on a profile and on a group; a group's avatar is a media id only (a URL, even of an allowed host, is refused) and creating a group takes my own upload or an https URL of an allowed host, as a profile does
--- init
ChatChats::setup();
my @r;
my $mine = main::upload_png(alice => 1);
my $bobs = main::upload_png(bob => 2);
my $none = "0123456789abcdef01234567";
push @r, "mine: " . main::try(alice => PUT => "/api/users/profile", { avatar => $mine });
my ($s1, $b1) = ChatChats::call(alice => PUT => "/api/users/profile", { avatar => $bobs });
my ($s2, $b2) = ChatChats::call(alice => PUT => "/api/users/profile", { avatar => $none });
push @r, "bob's: $s1 $b1->{error}{code} $b1->{error}{details}{field}";
push @r, "same as none: " . (JSON::PP->new->canonical->encode($b1) eq JSON::PP->new->canonical->encode($b2) && $s1 == $s2 ? "yes" : "no");
my $me = ChatChats::api(alice => GET => "/api/users/profile")->{user};
push @r, "kept: " . ($me->{avatar} eq $mine ? "mine" : $me->{avatar});
for my $url ("https://cdn.example.com/a.png", "https://CDN.example.com/b.png",
             "https://evil.example.com/a.png", "http://cdn.example.com/a.png",
             "https://cdn.example.com\@evil.example.com/a.png",
             "https://cdn.example.com.evil.example/a.png") {
    push @r, "$url: " . main::try(alice => PUT => "/api/users/profile", { avatar => $url });
}
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "Pics", memberIds => [ $main::Id{bob} ] })->{chat}{id};
my ($g1, $c1) = ChatChats::call(alice => PUT => "/api/chats/$g", { avatar => $bobs });
my ($g2, $c2) = ChatChats::call(alice => PUT => "/api/chats/$g", { avatar => $none });
push @r, "group, bob's: $g1 $c1->{error}{code}";
push @r, "group same as none: " . (JSON::PP->new->canonical->encode($c1) eq JSON::PP->new->canonical->encode($c2) && $g1 == $g2 ? "yes" : "no");
push @r, "group, mine: " . main::try(alice => PUT => "/api/chats/$g", { avatar => $mine });
for my $url ("https://cdn.example.com/g.png", "https://evil.example.com/g.png") {
    push @r, "group $url: " . main::try(alice => PUT => "/api/chats/$g", { avatar => $url });
}
for my $a ($bobs, "https://evil.example.com/g.png", "https://cdn.example.com/g.png", $mine) {
    my ($cs, $cb) = ChatChats::call(alice => POST => "/api/chats/group",
        { name => "New", memberIds => [ $main::Id{bob} ], avatar => $a });
    push @r, "create with " . ($a eq $bobs ? "bob's" : $a eq $mine ? "mine" : $a) . ": $cs "
        . ($cb->{error} ? $cb->{error}{code} : "avatar " . (($cb->{chat}{avatar} // "") eq $mine ? "mine" : $cb->{chat}{avatar} // "none"));
}
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body
mine: 200 ok
bob's: 400 unknown_media avatar
same as none: yes
kept: mine
https://cdn.example.com/a.png: 200 ok
https://CDN.example.com/b.png: 200 ok
https://evil.example.com/a.png: 400 invalid_request avatar
http://cdn.example.com/a.png: 400 invalid_request avatar
https://cdn.example.com@evil.example.com/a.png: 400 invalid_request avatar
https://cdn.example.com.evil.example/a.png: 400 invalid_request avatar
group, bob's: 422 unknown_media
group same as none: yes
group, mine: 200 ok
group https://cdn.example.com/g.png: 400 invalid_request avatar
group https://evil.example.com/g.png: 400 invalid_request avatar
create with bob's: 422 unknown_media
create with https://evil.example.com/g.png: 400 invalid_request
create with https://cdn.example.com/g.png: 201 avatar https://cdn.example.com/g.png
create with mine: 201 avatar mine
