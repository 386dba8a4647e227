using System.Text;
using PgState.Modules.Hba;

namespace PgState.Tests.Unit;

/// <summary>pg_hba.conf include directives (PostgreSQL 16+) read as the server reads them: order, paths, include_dir, depth.</summary>
public sealed class HbaFileSetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("pgstate-hbaset-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Write(string relative, string text)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private static HbaFileSet Load(string main, int major = 16) =>
        HbaFileSet.Load(main, major, p => File.Exists(p) ? File.ReadAllBytes(p) : null);

    [Fact]
    public void Included_rules_take_the_directives_place_and_carry_their_file()
    {
        var main = Write("pg_hba.conf", "local all postgres peer\ninclude extra/one.conf\nhost all all 10.0.0.0/8 md5\ninclude_dir conf.d\n");
        var one = Write("extra/one.conf", "host all one 10.1.0.0/16 scram-sha-256\n");
        var b = Write("conf.d/20-b.conf", "host all b 10.3.0.0/16 scram-sha-256\n");
        var a = Write("conf.d/10-a.conf", "host all a 10.2.0.0/16 scram-sha-256\n");
        Write("conf.d/.hidden.conf", "host all hidden 10.9.0.0/16 trust\n");
        Write("conf.d/notes.txt", "host all txt 10.9.0.0/16 trust\n");

        var set = Load(main);
        Assert.Equal(["postgres", "one", "all", "a", "b"], set.Rules.Select(r => r.Rule.Users[0].Value));
        Assert.Equal([null, one, null, a, b], set.Rules.Select(r => r.File));
        Assert.Equal([main, one, a, b], set.Files.Select(f => f.Path));
        Assert.Empty(set.Problems);
        Assert.Equal($"line 1 of {a}", HbaFileSet.Where(set.Rules[3]));
        Assert.Equal("line 3", HbaFileSet.Where(set.Rules[2]));
    }

    [Fact]
    public void A_relative_path_is_relative_to_the_file_that_names_it()
    {
        var main = Write("pg_hba.conf", "include sub/a.conf\n");
        Write("sub/a.conf", "include b.conf\n");
        var b = Write("sub/b.conf", "local all all trust\n");
        Assert.Equal([b], Load(main).Rules.Select(r => r.File));
    }

    [Fact]
    public void Missing_files_are_problems_except_include_if_exists()
    {
        var main = Write("pg_hba.conf", "include gone.conf\ninclude_if_exists maybe.conf\ninclude_dir nodir\nlocal all all trust\n");
        var set = Load(main);
        Assert.Single(set.Rules);
        Assert.Equal([$"line 1 of {main}: include {_root}/gone.conf does not exist", $"line 3 of {main}: include_dir {_root}/nodir does not exist"], set.Problems);
    }

    [Fact]
    public void A_file_that_includes_itself_stops_at_the_servers_depth()
    {
        var main = Write("pg_hba.conf", "include loop.conf\n");
        Write("loop.conf", "local all all trust\ninclude loop.conf\n");
        var set = Load(main);
        Assert.Equal(HbaFileSet.MaxDepth, set.Rules.Count);
        Assert.Contains(set.Problems, p => p.Contains("nests deeper than the server's 10 levels", StringComparison.Ordinal));
    }

    [Fact]
    public void Before_16_an_include_line_is_no_directive()
    {
        var main = Write("pg_hba.conf", "include other.conf\nlocal all all trust\n");
        Write("other.conf", "host all x 10.0.0.0/8 trust\n");
        var set = Load(main, major: 15);
        Assert.Single(set.Files);
        Assert.Single(set.Rules);
        Assert.Single(set.Main.File.Problems);
    }

    [Fact]
    public void The_managed_block_is_found_in_an_included_file_and_With_replaces_only_that_file()
    {
        var main = Write("pg_hba.conf", "include_dir d\nlocal all all trust\n");
        var block = Write("d/pgstate.conf", "# BEGIN pgstate\n# END pgstate\n");
        var set = Load(main);
        Assert.Equal(block, set.BlockSource?.Path);
        var next = set.With(block, Encoding.UTF8.GetBytes("# BEGIN pgstate\nhost all app 10.0.0.0/8 scram-sha-256\n# END pgstate\n"), 16);
        Assert.Equal(["app", "all"], next.Rules.Select(r => r.Rule.Users[0].Value));
        Assert.Equal(block, next.Rules[0].File);
        Assert.Equal("# BEGIN pgstate\n# END pgstate\n", File.ReadAllText(block));   // nothing written
    }
}
