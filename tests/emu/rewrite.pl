#!/usr/bin/perl
# Rewrites a kernels/cuda source for the CPU execution harness (make test-emu), so that the
# .cu files themselves stay exactly what nvcc compiles:
#   k<<<grid, block[, smem[, stream]]>>>(args)
#     -> ::emu::launch_config(k, "k", __FILE__, __LINE__, grid, block[, smem[, stream]])(args)
#   __shared__ T a[N][M], b;        -> EMU_SHARED(T, a, [N][M]); EMU_SHARED(T, b, );
#   extern __shared__ T s[];        -> EMU_DYNAMIC_SHARED(T, s);
# (emu/device.h defines the macros: one exact-size allocation per declaration and block.)
# Newlines are kept and a #line directive names the original file, so compiler messages,
# __FILE__ / __LINE__ and AddressSanitizer reports point at the .cu source.
# Usage: rewrite.pl SRC > OUT
use strict;
use warnings;

my $src = $ARGV[0] or die "usage: rewrite.pl SRC\n";
open(my $fh, '<', $src) or die "rewrite.pl: $src: $!\n";
local $/;
my $text = <$fh>;
close $fh;

my $ident = qr/[A-Za-z_]\w*/;
my $dims = qr/(?:\s*\[[^\]]*\])*/;

# launches (the configuration may span lines; whitespace is moved after the call)
my $launches = 0;
$text =~ s{\b($ident)(\s*)<<<(.*?)>>>}{$launches++; "::emu::launch_config($1, \"$1\", __FILE__, __LINE__, $3)$2"}gse;

# dynamic shared memory
$text =~ s{\bextern\s+__shared__\s+((?:__align__\s*\(\s*\d+\s*\)\s*)?)([^;\[]*?)\s*\b($ident)\s*\[\s*\]\s*;}{
    "EMU_DYNAMIC_SHARED($2, $3);"
}gse;

# static shared memory: one EMU_SHARED per declarator
$text =~ s{(?<!\w)__shared__\s+([^;]*?);}{
    my $decl = $1;
    $decl =~ s/__align__\s*\(\s*\d+\s*\)\s*//g;
    # the type is the shortest prefix after which only a declarator list remains
    $decl =~ /^\s*(.+?)\s+((?:$ident$dims\s*)(?:,\s*$ident$dims\s*)*)$/s
        or die "rewrite.pl: $src: cannot read the __shared__ declaration '__shared__ $decl;'\n";
    my ($type, $list) = ($1, $2);
    my @out;
    for my $d (split /,/, $list) {
        $d =~ /^\s*($ident)\s*($dims)\s*$/s or die "rewrite.pl: $src: bad declarator '$d'\n";
        my ($name, $dd) = ($1, $2);
        $dd =~ s/\s+//g;
        push @out, "EMU_SHARED($type, $name, $dd);";
    }
    join(' ', @out);
}gse;

die "rewrite.pl: $src: a '<<<' is left that is not a launch\n" if $text =~ /<<</;
print "#line 1 \"$src\"\n", $text;
