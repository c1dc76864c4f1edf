//! A small slab keyed by index, with generations so that a completion for a
//! slot that was freed never reaches its next owner (connections in
//! [`crate::net`], calls in flight in [`crate::command`]).

/// A slot's key: index plus the generation it was handed out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub index: usize,
    pub generation: u32,
}

impl Key {
    /// The key as one number (generation high, index low), for handles
    /// that cross a layer as plain integers.
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | (self.index as u64 & 0xffff_ffff)
    }

    /// The key [`Key::to_u64`] made.
    pub fn from_u64(raw: u64) -> Key {
        Key {
            index: (raw & 0xffff_ffff) as usize,
            generation: (raw >> 32) as u32,
        }
    }
}

pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index];
                slot.0 = slot.0.wrapping_add(1);
                slot.1 = Some(value);
                Key {
                    index,
                    generation: slot.0,
                }
            }
            None => {
                self.slots.push((0, Some(value)));
                Key {
                    index: self.slots.len() - 1,
                    generation: 0,
                }
            }
        }
    }

    /// The key the next [`Slab::insert`] will return.
    pub fn vacant_key(&self) -> Key {
        match self.free.last() {
            Some(&index) => Key {
                index,
                generation: self.slots[index].0.wrapping_add(1),
            },
            None => Key {
                index: self.slots.len(),
                generation: 0,
            },
        }
    }

    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index) {
            Some((generation, Some(value))) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index) {
            Some((generation, Some(value))) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// The live entry at `index`, whatever its generation (mio tokens carry
    /// only the index; events for a slot always concern its current owner).
    pub fn key_at(&self, index: usize) -> Option<Key> {
        match self.slots.get(index) {
            Some((generation, Some(_))) => Some(Key {
                index,
                generation: *generation,
            }),
            _ => None,
        }
    }

    pub fn remove(&mut self, key: Key) -> Option<T> {
        match self.slots.get_mut(key.index) {
            Some((generation, value @ Some(_))) if *generation == key.generation => {
                self.free.push(key.index);
                self.len -= 1;
                value.take()
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn keys(&self) -> Vec<Key> {
        (0..self.slots.len())
            .filter_map(|i| self.key_at(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_miss_after_reuse() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(b.index, a.index);
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.keys(), vec![b]);
        assert_eq!(Key::from_u64(b.to_u64()), b);
    }
}
