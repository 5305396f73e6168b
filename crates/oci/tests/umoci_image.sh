# A three-layer image img:v1 built by umoci from rootfs changes: hard links, a symlink, an
# xattr, a removed tree (whiteout), an opaque directory, a file replaced by a directory.
umoci init --layout img
umoci new --image img:v1
umoci unpack --image img:v1 b >/dev/null
r=b/rootfs
mkdir -p $r/etc/app $r/data $r/gone/sub $r/opaque/old
echo hello > $r/etc/app/conf
head -c 3000000 /dev/urandom > $r/data/big
echo one > $r/data/a
ln $r/data/a $r/data/a-link
ln -s ../etc/app/conf $r/data/sym
python3 -c 'import os; os.setxattr("b/rootfs/data/a", "user.note", b"v1")'
echo x > $r/gone/sub/f
echo old > $r/opaque/old/f
echo file > $r/becomes
umoci repack --refresh-bundle --image img:v1 b
rm -rf $r/gone $r/opaque
mkdir -p $r/opaque/new
echo new > $r/opaque/new/f
rm $r/becomes; mkdir $r/becomes; echo inner > $r/becomes/inner
chmod 0750 $r/etc
echo changed > $r/etc/app/conf
umoci repack --refresh-bundle --image img:v1 b
echo deeper > $r/data/deeper
umoci repack --refresh-bundle --image img:v1 b
    
